"""What each FLOP counter counts, as a projection of one exact :class:`Cost`.

A projection is a set of terms of the cost breakdown (``conv``, ``linear``, ``matmul`` MACs and
the element counts in ``Cost.ops``) with a multiplier each; a counter's total is the sum of
``multiplier × term``.  Because every counter is written in the same terms, the difference
between any two is also a list of terms.  All rules below were measured on this project's modules
in eval mode under ``torch.no_grad()`` (``ulsam-nas verify`` re-measures them):

* ``torch``: ``torch.utils.flop_counter.FlopCounterMode`` counts 2 FLOPs per MAC of conv,
  linear and matmul, nothing else.
* ``fvcore``: ``FlopCountAnalysis.total()`` counts 1 per MAC, BatchNorm at 2 per element in eval
  mode (affine), LayerNorm at 5 per element (affine) and ``adaptive_avg_pool2d`` (to 1×1 or to
  one row or column) at 1 per input element; it ignores biases and warns about (and skips)
  softmax, sigmoid, max-pool, ``torch.mean``/``sum`` and element-wise ops.
* ``ptflops_aten``: ptflops with ``backend='aten'`` counts MACs plus one addition per output
  element of a conv/linear with a bias.  A Linear's bias counts only where torch fuses it into
  ``addmm``: 2-D input, or contiguous input of more dimensions; on a permuted (non-contiguous)
  map torch runs ``matmul`` then ``add_``, which is not counted, so ``ulsam_nas.analyze`` states
  that bias as ``add`` (measured with torch 2.13, ptflops 0.7.5).
* ``hardswish`` and ``hardsigmoid`` (``nn.Hardswish``/``nn.Hardsigmoid`` and their functionals)
  are counted by none of the six counters: no multiplier (measured).
* ``attention`` (the MACs of ``F.scaled_dot_product_attention``) is counted by none of the first
  five counters on the CPU (ultralytics-thop counts it from the call's shapes, below), where it
  runs a fused kernel (``_scaled_dot_product_flash_attention_for_cpu``) that torch's counter has
  no formula for; on the meta device torch's counter sees the products and
  counts them (measured): the projections here are for CPU tracing, as every check runs.
  Where torch runs its math fallback instead (heads broadcast without ``enable_gqa``, 3-D or 5-D
  inputs, a head width of V unlike Q's, a 3-D mask, a last dimension not of unit stride), the
  products are two ``bmm``: torch's counter counts them (2 per MAC), ptflops' aten backend too
  (1 per MAC), fvcore not (it sees one ``scaled_dot_product_attention`` call); the closed form
  names them ``attention_math`` (measured with torch 2.13, fvcore 0.1.5, ptflops 0.7.5).
* SiLU, GELU, tanh, LeakyReLU, k×k average pools, ``F.normalize``, ``cumsum``, sums, means
  and maxima over other axes, ``var``/``std``/``norm``/``logsumexp`` and other element-wise math
  (``exp``, ``log``, ``sqrt``, ``abs``, ``clamp``, ``sin``, ``cos``, powers) are counted by none
  of ``torch``, ``fvcore`` and ``ptflops_aten``; fvcore counts an affine GroupNorm at 5 per
  element (as LayerNorm), a LayerNorm or GroupNorm without affine parameters at 4, an adaptive
  average pool to any size at 1 per input element, and ``F.interpolate``/``nn.Upsample`` at 1
  per output element (nearest) or 4 (bilinear) (measured with torch 2.13, fvcore 0.1.5, ptflops
  0.7.5; the known-different counters were not measured on these).

Known-different counters (shown, never held to equality; their rules depend on coding style):

* ``ptflops_pytorch``: ptflops' default module-hook backend adds BatchNorm (2 per element),
  ReLU and max-pool modules *twice* (the module hook and the patched functional both fire),
  ReLU6 modules (whose functional is not patched), the patched functional pools and softmax
  once; ``nn.AdaptiveAvgPool2d``, ``nn.AdaptiveMaxPool2d`` and ``nn.AvgPool2d`` modules also
  twice (measured; its projection assumes this project's functional pools); at batch > 1 it
  mixes per-sample and total.
* ``thop``: module hooks on leaf modules only: conv/linear MACs, BatchNorm and LayerNorm at 4 per
  element;
  every functional call and operator, the attention matmuls included, counts 0.  Its hooks also
  count ``nn.AdaptiveAvgPool2d``, ``nn.AvgPool2d`` and ``nn.Softmax`` modules (measured), which
  this project's modules write as functionals.
* ``ultralytics_thop``: ultralytics-thop 2.2.3, the maintained thop (it installs the import name
  ``thop`` too, so it runs from a folder of its own in a process of its own).  ``thop.profile``
  puts the model in eval mode itself (so train mode counts the same) and adds module hooks on
  every module with a rule to the products called as functions outside such modules: conv
  MACs of ``nn.Conv1d``/``nn.Conv2d`` (not ``F.conv2d``); linear MACs of ``nn.Linear`` and
  ``F.linear``; matmul MACs of ``torch.matmul``, ``@``, ``bmm`` and a two-operand ``einsum``
  (not ``torch.mm``/``Tensor.mm``, nor an einsum of three operands); both products of
  ``F.scaled_dot_product_attention`` at 1 per MAC, whichever kernel runs (``attention`` and
  ``attention_math``); BatchNorm (module, not ``F.batch_norm``), LayerNorm and GroupNorm at 4
  per element, 2 without affine parameters.  No bias, activation (ReLU, sigmoid, SiLU, GELU,
  hard swish: 0), max pool, mean/sum or element-wise op, and no functional pool, softmax or
  resize.  Its hooks also count modules this project writes as functionals:
  ``nn.AdaptiveAvgPool2d`` and ``nn.AvgPool2d`` (pooled inputs + outputs), ``nn.Softmax`` (3n - 1
  per row of n), ``nn.Upsample`` (bilinear 11 per output element, nearest 0), ``nn.PReLU`` (1 per
  element) and ``nn.MultiheadAttention`` (its projections' MACs, both products and its softmax).
  On every attention module and built-in backbone it equals this projection exactly (measured
  on 451 module and 120 network cases at batch 2, per-sample); it is known-different because on
  other code (``cost --model --trace``) its count depends on those styles, which the terms do
  not distinguish.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ulsam_nas.cost.cost import MAC_KINDS, OP_UNITS, Cost

TERMS: tuple[str, ...] = (*MAC_KINDS, *OP_UNITS)


@dataclass(frozen=True)
class CounterConvention:
    key: str
    title: str
    unit: str
    multipliers: Mapping[str, int]
    supported: bool  # held to exact equality by `verify`
    note: str

    def project(self, cost: Cost) -> int:
        return sum(k * term_value(cost, term) for term, k in self.multipliers.items())

    def breakdown(self, cost: Cost) -> list[tuple[str, int, int]]:
        """(term, multiplier, term value) for every term this counter includes and is non-zero."""
        return [(t, k, term_value(cost, t)) for t, k in self.multipliers.items() if term_value(cost, t)]

    def dropped(self, cost: Cost) -> list[tuple[str, int]]:
        """Non-zero terms of the cost that this counter does not count."""
        return [(t, term_value(cost, t)) for t in TERMS if t not in self.multipliers and term_value(cost, t)]


def term_value(cost: Cost, term: str) -> int:
    if term in MAC_KINDS:
        return cost.macs_by.get(term, 0)
    return cost.ops.get(term, 0)


_MACS = {"conv": 1, "linear": 1, "matmul": 1}

COUNTERS: dict[str, CounterConvention] = {
    c.key: c
    for c in (
        CounterConvention(
            "torch",
            "torch.utils.flop_counter.FlopCounterMode",
            "FLOP (2 per MAC)",
            {"conv": 2, "linear": 2, "matmul": 2, "attention_math": 2},
            True,
            "2 × MACs of conv, linear and matmul (attention's too where torch's math fallback runs "
            "it); no bias, BatchNorm, pooling or element-wise ops",
        ),
        CounterConvention(
            "fvcore",
            "fvcore FlopCountAnalysis.total()",
            "MAC",
            {
                **_MACS,
                "batch_norm": 2,
                "layer_norm": 5,
                "group_norm": 5,
                "plain_layer_norm": 4,
                "plain_group_norm": 4,
                "global_avg_pool": 1,
                "axis_avg_pool": 1,
                "adaptive_avg_pool": 1,
                "upsample_nearest": 1,
                "upsample_bilinear": 4,
            },
            True,
            "MACs + BatchNorm at 2 per element (eval) + LayerNorm and GroupNorm at 5 per element "
            "+ adaptive average pooling (global or to one row/column) at 1 per input element + "
            "a resize at 1 (nearest) or 4 (bilinear) per output element; no bias; softmax, "
            "sigmoid, SiLU, GELU, tanh, max and average pools, torch.mean/sum and element-wise ops "
            "are skipped with a warning",
        ),
        CounterConvention(
            "ptflops_aten",
            "ptflops get_model_complexity_info(backend='aten')",
            "MAC",
            {**_MACS, "attention_math": 1, "bias_add": 1},
            True,
            "MACs (attention's where torch's math fallback runs it) + one addition per output element "
            "of a conv/linear with bias",
        ),
        CounterConvention(
            "ptflops_pytorch",
            "ptflops get_model_complexity_info(backend='pytorch')",
            "MAC",
            {
                **_MACS,
                "bias_add": 1,
                "batch_norm": 2,
                "layer_norm": 1,
                "relu": 2,
                "relu6": 1,
                "max_pool": 2,
                "global_avg_pool": 1,
                "axis_avg_pool": 1,
                "global_max_pool": 1,
                "softmax": 1,
            },
            False,
            "module hooks plus patched functionals: bias, BatchNorm ×2, nn.ReLU and nn.MaxPool2d "
            "counted twice (hook and patched functional both fire), nn.ReLU6, LayerNorm, "
            "functional pools and softmax once; sigmoid, torch.mean/sum, * and + not at all; "
            "mixed per-sample/total at batch > 1",
        ),
        CounterConvention(
            "thop",
            "thop.profile",
            "MAC",
            {"conv": 1, "linear": 1, "batch_norm": 4, "layer_norm": 4},
            False,
            "leaf-module hooks only: conv/linear MACs, BatchNorm and LayerNorm at 4 per element; every "
            "functional call and operator (the attention matmuls included) counts 0",
        ),
        CounterConvention(
            "ultralytics_thop",
            "ultralytics-thop thop.profile",
            "MAC",
            {
                **_MACS,
                "attention": 1,
                "attention_math": 1,
                "batch_norm": 4,
                "layer_norm": 4,
                "group_norm": 4,
                "plain_layer_norm": 2,
                "plain_group_norm": 2,
            },
            False,
            "module hooks plus functional products: conv/linear MACs, matmul/bmm/@/einsum and "
            "scaled-dot-product attention MACs, BatchNorm, LayerNorm and GroupNorm at 4 per element "
            "(2 without affine); no bias, activations or element-wise ops; pools, softmax and resizes "
            "only as nn modules (none here), torch.mm and F.conv2d not at all",
        ),
    )
}

SUPPORTED = [k for k, c in COUNTERS.items() if c.supported]
KNOWN_DIFFERENT = [k for k, c in COUNTERS.items() if not c.supported]


def difference(cost: Cost, a: str, b: str) -> list[tuple[str, int]]:
    """Counter ``a`` minus counter ``b``, term by term (non-zero contributions only)."""
    ca, cb = COUNTERS[a], COUNTERS[b]
    out = []
    for term in TERMS:
        delta = (ca.multipliers.get(term, 0) - cb.multipliers.get(term, 0)) * term_value(cost, term)
        if delta:
            out.append((term, delta))
    return out


# -- how published figures are made ---------------------------------------------------------------
# Counters traced on a model in train mode (several papers' READMEs profile that way): the rules
# that change, measured on this project's modules.  fvcore counts BatchNorm in training at 5 per
# element (it adds the batch statistics); thop, ptflops and torch count the same in both modes, and
# ultralytics-thop puts the model in eval mode itself.
TRAIN_MODE_CHANGES: dict[str, dict[str, int]] = {"fvcore": {"batch_norm": 5}}

BINARY_MEGA = 2**20  # ECA-Net's README prints ResNet-50's 25,557,032 params as "24.37M" (÷ 2^20)


def train_mode_total(cost: Cost, counter: str) -> int:
    """What ``counter`` reports for a model traced in train mode."""
    convention = COUNTERS[counter]
    multipliers = {**convention.multipliers, **TRAIN_MODE_CHANGES.get(counter, {})}
    return sum(k * term_value(cost, term) for term, k in multipliers.items())


def published_readings(cost: Cost) -> list[dict[str, object]]:
    """Each count as papers print it: decimal (÷ 10^6) and binary (÷ 2^20) mega, and every
    counter's total in eval and in train mode."""
    counts: list[tuple[str, int]] = [("params (exact)", cost.params), ("MACs (exact)", cost.macs)]
    for key, convention in COUNTERS.items():
        eval_total, train_total = convention.project(cost), train_mode_total(cost, key)
        if train_total == eval_total:
            counts.append((f"{key} ({convention.unit}), eval or train", eval_total))
        else:
            counts.append((f"{key} ({convention.unit}), eval mode", eval_total))
            counts.append((f"{key} ({convention.unit}), train mode", train_total))
    return [
        {"what": what, "count": count, "decimal_mega": count / 1e6, "binary_mega": count / BINARY_MEGA}
        for what, count in counts
    ]
