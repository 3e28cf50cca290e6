"""What each traced operation costs, in the closed forms' own terms (``cost.primitives``).

Each rule states the compute of one graph node (MACs and the element counts of ``OP_UNITS``);
parameters are counted once per parameter from the module tree (``analysis``), not per call, so
a module called twice (CBAM's shared MLP) costs its MACs twice and its weights once.  The units
mean what the attention modules' closed forms mean by them, because the counters
(``cost.conventions``) are projected from those units: element-wise ops count output elements,
pools and reductions count input elements, a global average pool is ``global_avg_pool`` whether
written as ``nn.AdaptiveAvgPool2d(1)`` or ``F.adaptive_avg_pool2d(x, 1)``, and ``torch.mean``
over h×w is ``spatial_mean`` (fvcore counts the pool and not the mean).

A node no rule covers returns None and becomes part of the remainder: it is never costed as 0.
Ops that only move, view, split, join or allocate data are listed in ``MOVES_ONLY`` and cost 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch.fx as fx
from torch import nn

from ulsam_nas.analysis.operators import FUNCTIONS, METHODS
from ulsam_nas.analysis.trace import TensorInfo
from ulsam_nas.attention import attention_cost, get_attention, list_attention
from ulsam_nas.cost.cost import Terms
from ulsam_nas.cost.primitives import batch_norm, conv2d, elementwise, linear
from ulsam_nas.errors import InvalidInput

NOTHING = Terms()


def info(value: Any) -> TensorInfo | None:
    """The traced tensor behind a graph argument (None for constants and non-tensors)."""
    if isinstance(value, fx.Node):
        found = value.meta.get("info")
        return found if isinstance(found, TensorInfo) else None
    return None


def first_tensor(node: fx.Node) -> TensorInfo | None:
    for arg in (*node.args, *node.kwargs.values()):
        if (found := info(arg)) is not None:
            return found
    return None


# -- modules ------------------------------------------------------------------------------------
def _conv(m: nn.Module, x: TensorInfo, out: TensorInfo) -> Terms | None:
    assert isinstance(m, nn.Conv1d | nn.Conv2d)
    kernel = tuple(m.kernel_size)
    kh, kw = (kernel[0], 1) if len(kernel) == 1 else kernel
    pixels = out.numel // m.out_channels  # output positions (× batch 1)
    terms = conv2d(m.in_channels // m.groups, m.out_channels, kh, pixels, 1, m.bias is not None, kernel_w=kw)
    return terms.without_params()


def fused_bias(x: TensorInfo) -> bool:
    """Whether torch adds a Linear's bias inside its matrix product (``addmm``): for 2-D input,
    and for contiguous input of more dimensions (flattened to 2-D); otherwise ``matmul`` then a
    separate ``add_``, which ptflops' aten backend does not count (measured), so that bias is
    stated as ``add`` (the element-wise op torch really runs), not ``bias_add``."""
    return len(x.shape) == 2 or (len(x.shape) > 2 and x.contiguous)


def _linear(m: nn.Module, x: TensorInfo, out: TensorInfo) -> Terms | None:
    assert isinstance(m, nn.Linear)
    rows = out.numel // m.out_features
    bias = m.bias is not None
    terms = linear(m.in_features, m.out_features, bias, rows).without_params()
    if bias and not fused_bias(x):
        terms = linear(m.in_features, m.out_features, False, rows).without_params()
        terms = terms + elementwise("add", out.numel)
    return terms


def _batch_norm(m: nn.Module, x: TensorInfo, out: TensorInfo) -> Terms | None:
    # fvcore counts 2 per element only for an affine BatchNorm on running statistics (eval).
    assert isinstance(m, nn.modules.batchnorm._BatchNorm)
    if not (m.affine and m.track_running_stats):
        return None
    return batch_norm(m.num_features, x.numel).without_params()


def _layer_norm(m: nn.Module, x: TensorInfo, out: TensorInfo) -> Terms | None:
    assert isinstance(m, nn.LayerNorm)
    return elementwise("layer_norm", x.numel) if m.elementwise_affine else None


def _group_norm(m: nn.Module, x: TensorInfo, out: TensorInfo) -> Terms | None:
    assert isinstance(m, nn.GroupNorm)
    return elementwise("group_norm", x.numel) if m.affine else None


def _upsample(m: nn.Module, x: TensorInfo, out: TensorInfo) -> Terms | None:
    assert isinstance(m, nn.Upsample)
    return _resize(str(m.mode), bool(m.align_corners), out)


def _resize(mode: str, align_corners: bool, out: TensorInfo) -> Terms | None:
    """A 2-D resize (the units of fvcore's rule: nearest and bilinear; others have none yet)."""
    if len(out.shape) != 4:
        return None
    if mode == "nearest":
        return elementwise("upsample_nearest", out.numel)
    if mode == "bilinear":
        return elementwise("upsample_bilinear", out.numel)
    return None


def _hardtanh(m: nn.Module, x: TensorInfo, out: TensorInfo) -> Terms | None:
    assert isinstance(m, nn.Hardtanh)
    return elementwise("relu6", out.numel) if (m.min_val, m.max_val) == (0.0, 6.0) else None


def _output(op: str) -> Callable[[nn.Module, TensorInfo, TensorInfo], Terms | None]:
    return lambda m, x, out: elementwise(op, out.numel)


def _input(op: str) -> Callable[[nn.Module, TensorInfo, TensorInfo], Terms | None]:
    return lambda m, x, out: elementwise(op, x.numel)


def _adaptive_avg_module(m: nn.Module, x: TensorInfo, out: TensorInfo) -> Terms | None:
    assert isinstance(m, nn.AdaptiveAvgPool2d)
    op = adaptive_avg_unit(x, out, m.output_size)
    return elementwise(op, x.numel) if op else None


def _adaptive_max_module(m: nn.Module, x: TensorInfo, out: TensorInfo) -> Terms | None:
    return elementwise("global_max_pool", x.numel) if out.shape[-2:] == (1, 1) else None


def _moves(m: nn.Module, x: TensorInfo, out: TensorInfo) -> Terms | None:
    return NOTHING


ModuleRule = Callable[[nn.Module, TensorInfo, TensorInfo], "Terms | None"]

# Checked in order (ReLU6 is a Hardtanh).  Only 2-D pools: the units are for images.
MODULE_RULES: tuple[tuple[type, ModuleRule], ...] = (
    (nn.Conv1d, _conv),
    (nn.Conv2d, _conv),
    (nn.Linear, _linear),
    (nn.BatchNorm1d, _batch_norm),
    (nn.BatchNorm2d, _batch_norm),
    (nn.LayerNorm, _layer_norm),
    (nn.GroupNorm, _group_norm),
    (nn.SiLU, _output("silu")),
    (nn.GELU, _output("gelu")),
    (nn.Tanh, _output("tanh")),
    (nn.AvgPool2d, _output("avg_pool")),
    (nn.Upsample, _upsample),
    (nn.ReLU, _output("relu")),
    (nn.ReLU6, _output("relu6")),
    (nn.Hardtanh, _hardtanh),
    (nn.Sigmoid, _output("sigmoid")),
    (nn.Hardswish, _output("hardswish")),
    (nn.Hardsigmoid, _output("hardsigmoid")),
    (nn.Softmax, _output("softmax")),
    (nn.MaxPool2d, _input("max_pool")),
    (nn.AdaptiveAvgPool2d, _adaptive_avg_module),
    (nn.AdaptiveMaxPool2d, _adaptive_max_module),
    (nn.Identity, _moves),
    (nn.Flatten, _moves),
    (nn.Unflatten, _moves),
    (nn.Dropout, _moves),  # eval mode: the identity
    (nn.Dropout1d, _moves),
    (nn.Dropout2d, _moves),
)


def module_terms(m: nn.Module, node: fx.Node) -> Terms | None:
    """The compute of one call of a leaf module (None: no closed form)."""
    x, out = first_tensor(node), info(node)
    if x is None or out is None:
        return None
    if type(m) in ATTENTION_KEYS:
        return _attention_leaf(m, x)
    if isinstance(m, nn.modules.conv._ConvNd) and m.transposed:
        return None  # counters disagree on transposed convs (input vs output positions)
    for cls, rule in MODULE_RULES:
        if isinstance(m, cls):
            return rule(m, x, out)
    return None


ATTENTION_KEYS: dict[type, str] = {
    cls: key for key in list_attention() if isinstance(cls := get_attention(key).module_cls, type)
}


def _attention_leaf(m: nn.Module, x: TensorInfo) -> Terms | None:
    """A registered module fx cannot trace through (SimAM): its closed form, when its options
    can be read back from the module's attributes of the same names."""
    key = ATTENTION_KEYS[type(m)]
    names = get_attention(key).option_names()
    if len(x.shape) != 4 or not all(hasattr(m, n) for n in names):
        return None
    try:
        cost = attention_cost(key, *x.shape[1:], **{n: getattr(m, n) for n in names})
    except InvalidInput:
        return None
    return Terms(macs=cost.macs_by, ops=cost.ops)


# -- functions and tensor methods --------------------------------------------------------------
def adaptive_avg_unit(x: TensorInfo, out: TensorInfo, size: Any) -> str | None:
    """``global_avg_pool`` for a pool to 1×1, ``axis_avg_pool`` to one row or column, as written:
    ``(h, 1)`` with h read from the input is a column even on a map one pixel wide (Coordinate
    Attention's pools, whose closed form says so); None for other sizes (no unit)."""
    if len(x.shape) < 3:
        return None
    sizes = tuple(size) if isinstance(size, tuple | list) else (size, size)
    if len(sizes) != 2:
        return None
    (h, w), (oh, ow) = x.shape[-2:], out.shape[-2:]
    if _literal_one(sizes[0]) and _literal_one(sizes[1]):
        return "global_avg_pool"
    if _literal_one(sizes[1]) and _keeps(sizes[0], h, oh):
        return "axis_avg_pool"
    if _literal_one(sizes[0]) and _keeps(sizes[1], w, ow):
        return "axis_avg_pool"
    return "global_avg_pool" if (oh, ow) == (1, 1) else None


def _literal_one(size: Any) -> bool:
    return isinstance(size, int) and not isinstance(size, bool) and size == 1


def _keeps(requested: Any, size: int, got: int) -> bool:
    """The requested side is the input's own (None, a size read from the input, or equal)."""
    return got == size and (requested is None or isinstance(requested, fx.Node) or requested == size)


def _arg(node: fx.Node, index: int, name: str, default: Any = None) -> Any:
    if name in node.kwargs:
        return node.kwargs[name]
    return node.args[index] if len(node.args) > index else default


def reduced_dims(node: fx.Node, x: TensorInfo) -> set[int] | None:
    dim = _arg(node, 1, "dim")
    dims = [dim] if isinstance(dim, int) and not isinstance(dim, bool) else dim
    if not isinstance(dims, tuple | list) or not dims or not all(isinstance(d, int) for d in dims):
        return None
    return {d % len(x.shape) for d in dims}


def _reduction(kind: str, node: fx.Node, x: TensorInfo) -> Terms | None:
    """A mean, sum or max over h×w (every axis after the channels) or over the channels."""
    dims = reduced_dims(node, x)
    if dims is None:
        return None
    spatial = len(x.shape) >= 3 and dims == set(range(2, len(x.shape)))
    if spatial and kind in ("mean", "sum"):
        return elementwise("spatial_mean" if kind == "mean" else "spatial_sum", x.numel)
    if dims == {1} and kind in ("mean", "amax", "max"):
        return elementwise("channel_pool", x.numel)
    return None


def _matmul(node: fx.Node, out: TensorInfo) -> Terms | None:
    a, b = info(node.args[0]) if node.args else None, info(node.args[1]) if len(node.args) > 1 else None
    if a is None or b is None or len(a.shape) < 2 or len(b.shape) < 2:
        return None
    inner = a.shape[-1]
    # fvcore counts numel(a)·p: equal to the true numel(out)·k unless a is broadcast.
    if a.numel * b.shape[-1] != out.numel * inner:
        return None
    return Terms.of({("macs", "matmul"): out.numel * inner})


def _pow(node: fx.Node, out: TensorInfo) -> Terms | None:
    exponent = _arg(node, 1, "exponent")
    return elementwise("square", out.numel) if exponent == 2 and info(node.args[0]) is not None else None


def _function_terms(kind: str, node: fx.Node, x: TensorInfo | None, out: TensorInfo) -> Terms | None:
    if kind in (
        "add",
        "sub",
        "mul",
        "div",
        "relu",
        "relu6",
        "sigmoid",
        "hardswish",
        "hardsigmoid",
        "softmax",
        "silu",
        "gelu",
        "tanh",
    ):
        return elementwise(kind, out.numel)
    if kind == "square":
        return elementwise("square", out.numel)
    if kind == "pow":
        return _pow(node, out)
    if kind == "matmul":
        return _matmul(node, out)
    if x is None:
        return None
    if kind in ("mean", "sum", "amax", "max"):
        return _reduction(kind, node, x)
    if kind == "hardtanh":
        bounds = (_arg(node, 1, "min_val", -1.0), _arg(node, 2, "max_val", 1.0))
        return elementwise("relu6", out.numel) if bounds == (0.0, 6.0) else None
    if kind == "max_pool2d":
        return elementwise("max_pool", x.numel)
    if kind == "adaptive_avg_pool2d":
        op = adaptive_avg_unit(x, out, _arg(node, 1, "output_size"))
        return elementwise(op, x.numel) if op else None
    if kind == "adaptive_max_pool2d":
        return elementwise("global_max_pool", x.numel) if out.shape[-2:] == (1, 1) else None
    if kind == "dropout":
        return NOTHING if _arg(node, 2, "training", True) is False else None
    if kind == "avg_pool2d":
        return elementwise("avg_pool", out.numel) if len(x.shape) == 4 else None
    if kind == "interpolate":
        return _resize(str(_arg(node, 3, "mode", "nearest")), bool(_arg(node, 4, "align_corners")), out)
    return _normalization_or_linear(kind, node, x, out)


def _normalization_or_linear(kind: str, node: fx.Node, x: TensorInfo, out: TensorInfo) -> Terms | None:
    """The functionals that modules of other libraries call inside their own classes (timm's
    BatchNormAct2d, LayerNorm2d and Linear): the same units as the torch modules."""
    if kind == "batch_norm":  # eval, affine: what nn.BatchNorm2d's rule costs
        weight, training = _arg(node, 3, "weight"), _arg(node, 5, "training", False)
        if training is not False or info(weight) is None or len(x.shape) < 2:
            return None
        return batch_norm(x.shape[1], x.numel).without_params()
    if kind == "layer_norm":
        return elementwise("layer_norm", x.numel) if info(_arg(node, 2, "weight")) is not None else None
    if kind == "group_norm":
        return elementwise("group_norm", x.numel) if info(_arg(node, 2, "weight")) is not None else None
    if kind == "linear":
        weight = info(_arg(node, 1, "weight"))
        if weight is None or len(weight.shape) != 2:
            return None
        out_features, in_features = weight.shape
        bias = info(_arg(node, 2, "bias")) is not None
        rows = out.numel // out_features
        terms = linear(in_features, out_features, bias and fused_bias(x), rows).without_params()
        return terms if not bias or fused_bias(x) else terms + elementwise("add", out.numel)
    if kind == "sdpa":
        return _attention(node, x, out)
    if kind == "stochastic_depth":  # torchvision's, fx-wrapped: the identity in eval
        return NOTHING if _arg(node, 3, "training", True) is False else None
    return None


def function_terms(node: fx.Node) -> Terms | None:
    """The compute of a call_function or call_method node (None: no closed form)."""
    kind = FUNCTIONS.get(node.target) if node.op == "call_function" else METHODS.get(str(node.target))
    if kind is None and node.op == "call_function" and _is_torchvision_stochastic_depth(node.target):
        kind = "stochastic_depth"
    if kind == "moves":
        return NOTHING
    out = node.meta.get("info")
    if kind in ("max", "max_pool2d", "adaptive_max_pool2d") and type(out) is tuple and out:
        out = out[0]  # (values, indices)
    if not isinstance(out, TensorInfo):
        # Sizes, Python numbers and comparisons of them cost nothing; an unknown op that returns
        # tensors (topk, unique, ...) is part of the remainder.
        return None if _has_tensor(out) else NOTHING
    if kind is None:
        return None
    return _function_terms(kind, node, first_tensor(node), out)


_UNKNOWN = object()


def _value(argument: Any) -> Any:
    """A plain argument, or the value a traced one had (a forward's ``attn_mask=None``)."""
    if isinstance(argument, fx.Node):
        return argument.meta.get("value", _UNKNOWN)
    return argument


def _attention(node: fx.Node, q: TensorInfo, out: TensorInfo) -> Terms | None:
    """``F.scaled_dot_product_attention(q, k, v)`` without a mask or dropout: Q·Kᵀ (L·S·E MACs per
    batch and head) and the weights times V (L·S·Ev), a softmax over L·S weights."""
    k, v = info(_arg(node, 1, "key")), info(_arg(node, 2, "value"))
    mask, dropout = _value(_arg(node, 3, "attn_mask")), _value(_arg(node, 4, "dropout_p", 0.0))
    if k is None or v is None or mask is not None or dropout != 0.0:
        return None
    if _value(_arg(node, 5, "is_causal", False)) is not False:
        return None  # the kernels skip the masked half: counted by no convention here yet
    if len(q.shape) < 3 or len(k.shape) != len(q.shape) or len(v.shape) != len(q.shape):
        return None
    length, width, source, value_width = q.shape[-2], q.shape[-1], k.shape[-2], v.shape[-1]
    heads = q.numel // (length * width)
    if k.shape[-1] != width or v.shape[-2] != source or out.numel != heads * length * value_width:
        return None  # broadcast or grouped heads: no closed form yet
    weights = heads * length * source
    return Terms.of({("macs", "attention"): weights * (width + value_width), ("ops", "softmax"): weights})


def _is_torchvision_stochastic_depth(target: Any) -> bool:
    # torchvision cannot be a dependency here (its wheel needs the CUDA torch): known by name.
    module = getattr(target, "__module__", "") or ""
    return getattr(target, "__name__", "") == "stochastic_depth" and module.startswith("torchvision")


def _has_tensor(value: Any) -> bool:
    if isinstance(value, TensorInfo):
        return True
    return isinstance(value, tuple) and any(_has_tensor(v) for v in value)


def op_name(node: fx.Node) -> str:
    """How the remainder names an operation: ``torch.tanh``, ``Tensor.tanh``, ``operator.neg``."""
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    target = node.target
    module = getattr(target, "__module__", None) or ""
    name = getattr(target, "__name__", str(target))
    module = {"torch.nn.functional": "F", "_operator": "operator"}.get(module, module)
    return f"{module}.{name}" if module else name
