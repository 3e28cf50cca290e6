"""One training step's cost: the exact MACs (``Cost.train_macs``) and what torch's FlopCounterMode
counts for it (the step's ``loss.backward()`` run inside the counter's context), a projection of
the same record like the inference counters of ``conventions``.

Measured with torch 2.13: FlopCounterMode counts 2 FLOPs per MAC of every product of the forward
and of the backward (``convolution_backward`` for a convolution's input and weight gradients,
``mm``/``bmm`` for a linear layer's and a matmul's), nothing for bias gradients, BatchNorm,
activations, the loss or the optimizer, and 0 for fused scaled-dot-product attention on the CPU,
forward and backward.  It counts a grouped convolution's weight gradient as if the convolution
were dense: groups × its MACs (``conv_backward_flop`` keeps the full channel product), so a
depthwise layer's weight gradient counts channels times over; the exact training MACs do not.
"""

from __future__ import annotations

from typing import Any

from ulsam_nas.cost.cost import GROUPED_WEIGHT_EXTRA, TRAIN_UNITS, Cost

# FLOPs per unit of each term of the exact record (forward MAC kinds and ``train_by`` terms).
TORCH_TRAINING: dict[str, int] = {
    "conv": 2,
    "linear": 2,
    "matmul": 2,
    "attention_math": 2,
    "conv_grad_input": 2,
    "conv_grad_weight": 2,
    GROUPED_WEIGHT_EXTRA: 2,
    "linear_grad_input": 2,
    "linear_grad_weight": 2,
    "matmul_grad": 2,
    "attention_math_grad": 2,
}


def _terms(cost: Cost) -> dict[str, int]:
    assert cost.train_by is not None
    return {**cost.macs_by, **cost.train_by}


def torch_training_flops(cost: Cost) -> int | None:
    """What FlopCounterMode counts for one training step of ``cost``'s network or module (None
    where the backward has no closed form)."""
    if cost.train_by is None:
        return None
    terms = _terms(cost)
    return sum(k * terms.get(term, 0) for term, k in TORCH_TRAINING.items())


def training_report(cost: Cost) -> dict[str, Any] | None:
    """A training step, for reports: the forward's MACs, each backward product's, the total, and
    torch's count of it (FLOPs) with what it adds that no kernel computes."""
    if cost.train_by is None:
        return None
    backward = {k: v for k, v in cost.train_by.items() if k in TRAIN_UNITS and v}
    torch_flops = torch_training_flops(cost)
    assert torch_flops is not None
    return {
        "forward_macs": cost.macs,
        "backward_macs": sum(backward.values()),
        "backward_by": backward,
        "train_macs": cost.train_macs,
        "torch_flops": torch_flops,
        "torch_grouped_extra_macs": cost.train_by.get(GROUPED_WEIGHT_EXTRA, 0),
    }


def training_lines(report: dict[str, Any] | None, indent: str = "  ") -> list[str]:
    """``training_report`` for people."""
    if report is None:
        return [
            f"{indent}training step: no closed form of its backward here (an operator without a closed "
            "form, a registered rule without backward terms, or a module trained where no gradient "
            "flows before it)"
        ]
    listing = ", ".join(f"{k} {v:,}" for k, v in report["backward_by"].items()) or "none"
    lines = [
        f"{indent}training step MACs {report['train_macs']:,} = forward {report['forward_macs']:,} "
        f"+ backward {report['backward_macs']:,} ({listing})",
        f"{indent}torch's FlopCounterMode counts {report['torch_flops']:,} FLOPs for it (2 per MAC)",
    ]
    extra = report["torch_grouped_extra_macs"]
    if extra:
        lines[-1] += (
            f", {2 * extra:,} of them for grouped convolutions' weight gradients counted as dense "
            f"({extra:,} MACs no kernel computes)"
        )
    return lines
