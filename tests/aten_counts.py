"""A real forward pass counted in the closed forms' own terms, from the aten ops it runs.

A ``TorchDispatchMode`` sees each aten op after autograd and after composite ops have been
decomposed (``nn.Linear`` arrives as ``t`` + ``addmm``, ``F.relu6`` as ``hardtanh``, a global
``adaptive_avg_pool2d`` as ``mean`` over the spatial dims).  Each op is mapped to the MAC kind
(``conv``, ``linear``, ``matmul``) or the ``OP_UNITS`` key it counts as, by the unit's own
definition and from the shapes torch actually produced, never from the cost model's sizes.
Ops that only move, view or allocate data are listed in ``MOVES_ONLY``; any other op makes the
count fail, so an op a module starts to use cannot go uncounted silently.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from ulsam_nas.cost.cost import Cost

aten = torch.ops.aten

MOVES_ONLY = {
    aten.view,
    aten._unsafe_view,
    aten.reshape,
    aten.transpose,
    aten.t,
    aten.permute,
    aten.expand,
    aten.unsqueeze,
    aten.squeeze,
    aten.slice,
    aten.select,
    aten.alias,
    aten.detach,
    aten.clone,
    aten.cat,
    aten.split_with_sizes,
    aten.empty,  # BatchNorm's (unused) save buffers
}


def _reduced_dims(tensor: torch.Tensor, dims: Any) -> set[int]:
    dims = [dims] if isinstance(dims, int) else list(dims)
    return {d % tensor.dim() for d in dims}


def _spatial(tensor: torch.Tensor) -> set[int]:
    return {tensor.dim() - 2, tensor.dim() - 1}


def _count_convolution(args, out, counts: Counter) -> None:
    _, weight, bias = args[:3]
    # One MAC per weight of one filter (in_channels/groups × kh × kw) per output element.
    counts["conv"] += out.numel() * weight[0].numel()
    if bias is not None:  # the bias is fused into the convolution op
        counts["bias_add"] += out.numel()


def _count_addmm(args, out, counts: Counter) -> None:
    # nn.Linear with a bias: bias + input @ weightᵀ.
    counts["linear"] += out.numel() * args[1].shape[1]
    counts["bias_add"] += out.numel()


def _count_bmm(args, out, counts: Counter) -> None:
    counts["matmul"] += out.numel() * args[0].shape[-1]


def _count_batch_norm(args, out, counts: Counter) -> None:
    training = args[5]
    assert not training, "count BatchNorm in eval mode (one multiply and one add per element)"
    counts["batch_norm"] += args[0].numel()


def _count_hardtanh(args, out, counts: Counter) -> None:
    low, high = (args[1], args[2]) if len(args) >= 3 else (-1.0, 1.0)
    assert (low, high) == (0.0, 6.0), f"hardtanh({low}, {high}) is not a ReLU6"
    counts["relu6"] += out.numel()


def _count_mean(args, out, counts: Counter) -> None:
    x, dims = args[0], _reduced_dims(args[0], args[1])
    if dims == _spatial(x):  # adaptive_avg_pool2d(x, 1), or torch.mean over h×w: see AVERAGES
        counts["global_avg_pool"] += x.numel()
    elif dims == {1}:  # a mean over channels (CBAM's spatial gate)
        counts["channel_pool"] += x.numel()
    else:
        raise AssertionError(f"mean over dims {sorted(dims)} of a {tuple(x.shape)} tensor has no unit")


def _count_sum(args, out, counts: Counter) -> None:
    x, dims = args[0], _reduced_dims(args[0], args[1])
    assert dims == _spatial(x), f"sum over dims {sorted(dims)} has no unit"
    counts["spatial_sum"] += x.numel()


def _count_axis_avg_pool(args, out, counts: Counter) -> None:
    # adaptive_avg_pool2d to one row or one column (Coordinate Attention's pools).
    x, size = args[0], tuple(args[1])
    assert size in ((x.shape[-2], 1), (1, x.shape[-1])), f"adaptive pool to {size} has no unit"
    counts["global_avg_pool"] += x.numel()  # compared as one unit: see AVERAGES


def _count_layer_norm(args, out, counts: Counter) -> None:
    assert args[2] is not None and args[3] is not None, "only an affine LayerNorm has a unit"
    counts["layer_norm"] += args[0].numel()


def _count_pow(args, out, counts: Counter) -> None:
    assert args[1] == 2, f"pow({args[1]}) is not a square"
    counts["square"] += out.numel()


def _count_amax(args, out, counts: Counter) -> None:
    x, dims = args[0], _reduced_dims(args[0], args[1] if len(args) > 1 else ())
    assert dims == {1}, f"amax over dims {sorted(dims)} has no unit"
    counts["channel_pool"] += x.numel()


def _count_adaptive_max_pool(args, out, counts: Counter) -> None:
    assert tuple(out[0].shape[-2:]) == (1, 1), "only a global adaptive max pool has a unit"
    counts["global_max_pool"] += args[0].numel()


def _count_max_pool(args, out, counts: Counter) -> None:
    # The unit counts the pool's input elements, including a last odd row/column that a 2×2
    # stride-2 pool never reads (Non-local's subsampling on an odd map).
    counts["max_pool"] += args[0].numel()


def _output_elements(key: str) -> Callable[[Any, Any, Counter], None]:
    def count(args, out, counts: Counter) -> None:
        counts[key] += out.numel()

    return count


COUNTERS: dict[Any, Callable[[Any, Any, Counter], None]] = {
    aten.convolution: _count_convolution,
    aten.addmm: _count_addmm,
    aten.bmm: _count_bmm,
    aten.native_batch_norm: _count_batch_norm,
    aten.relu: _output_elements("relu"),
    aten.hardtanh: _count_hardtanh,
    aten.sigmoid: _output_elements("sigmoid"),
    aten._softmax: _output_elements("softmax"),
    # The gating products and sums broadcast: the unit is the elements of the result.
    aten.mul: _output_elements("mul"),
    aten.add: _output_elements("add"),
    aten.sub: _output_elements("sub"),
    aten.div: _output_elements("div"),
    aten.pow: _count_pow,
    aten.sum: _count_sum,
    aten._adaptive_avg_pool2d: _count_axis_avg_pool,
    aten.native_layer_norm: _count_layer_norm,
    aten.mean: _count_mean,
    aten.amax: _count_amax,
    aten.adaptive_max_pool2d: _count_adaptive_max_pool,
    aten.max_pool2d_with_indices: _count_max_pool,
}


class OpCounter(TorchDispatchMode):
    """Counts every aten op run under it, into ``counts[scope]`` (``scope`` set by the caller)."""

    def __init__(self) -> None:
        super().__init__()
        self.scope = ""
        self.counts: dict[str, Counter] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = func.overloadpacket
        if packet in COUNTERS:
            COUNTERS[packet](args, out, self.counts.setdefault(self.scope, Counter()))
        elif packet not in MOVES_ONLY:
            raise AssertionError(f"{func} has no counting rule: add one to tests/aten_counts.py")
        return out


@contextlib.contextmanager
def counting(counter: OpCounter):
    """Run under ``counter``, without autograd, on one thread: the counts depend on shapes only,
    and two intra-op threads on a shared 2-core machine run these small ops up to 50× slower
    (OpenMP threads waiting on a busy core)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad(), counter:
            yield
    finally:
        torch.set_num_threads(threads)


def per_sample(counts: Mapping[str, int], batch: int) -> dict[str, int]:
    """Batch totals divided by the batch size; every count must be a multiple of it."""
    assert all(v % batch == 0 for v in counts.values()), f"counts not proportional to batch {batch}: {counts}"
    return {k: v // batch for k, v in counts.items() if v}


# At the aten level an average over h×w is one op however it was written: a global
# ``adaptive_avg_pool2d``, SimAM's ``torch.mean`` and, on a map with one row or column,
# Coordinate Attention's pools all run ``mean``.  Their units are compared as one here; fvcore,
# which sees the TorchScript ops and counts only the pools, tells them apart, and ``verify``
# holds the closed forms to it.
AVERAGES = ("global_avg_pool", "spatial_mean", "axis_avg_pool")


def closed_form_terms(cost: Cost) -> dict[str, int]:
    """The MACs by kind and the element counts of a cost record, in one dict (zeros dropped),
    with the averages over h×w summed as ``global_avg_pool`` (see ``AVERAGES``)."""
    terms = {**cost.macs_by, **cost.ops}
    averaged = sum(terms.pop(key, 0) for key in AVERAGES)
    if averaged:
        terms["global_avg_pool"] = averaged
    return {k: v for k, v in terms.items() if v}


def count_module(module: nn.Module, shape: tuple[int, ...], batch: int = 2) -> dict[str, int]:
    """Per-sample counts of one eval-mode forward pass of ``module`` on a (batch, *shape) input."""
    x = torch.randn(batch, *shape)
    counter = OpCounter()
    with counting(counter):
        module.eval()(x)
    total: Counter = Counter()
    for counts in counter.counts.values():
        total.update(counts)
    return per_sample(total, batch)


def count_network(network: nn.Module, shape: tuple[int, ...], batch: int = 2):
    """Per-sample counts of a network built by ``create_network``, per submodule of ``features``
    (by name; ``head`` for the pool and classifier) and in total, and each submodule's actual
    (input shape, output shape) without the batch dimension."""
    counter = OpCounter()
    shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
    handles = []
    for name, child in network.features.named_children():

        def enter(module, inputs, name=name):
            counter.scope = name

        def leave(module, inputs, output, name=name):
            shapes[name] = (tuple(inputs[0].shape[1:]), tuple(output.shape[1:]))
            counter.scope = "head"  # whatever runs after the last layer is the head's

        handles += [child.register_forward_pre_hook(enter), child.register_forward_hook(leave)]
    try:
        x = torch.randn(batch, *shape)
        with counting(counter):
            network.eval()(x)
    finally:
        for handle in handles:
            handle.remove()
    by_scope = {name: per_sample(counts, batch) for name, counts in counter.counts.items()}
    total: Counter = Counter()
    for counts in by_scope.values():
        total.update(counts)
    return by_scope, dict(total), shapes
