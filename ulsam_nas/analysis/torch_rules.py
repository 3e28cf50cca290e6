"""The tool's own rules: a closed form for every operator the compact zoo runs in eval mode,
registered through ``register_rule`` like anyone else's.

The units mean what the attention modules' closed forms mean by them, because the counters
(``cost.conventions``) are projected from those units: element-wise ops count output elements,
pools and reductions count input elements, a global average pool is ``global_avg_pool`` whether
written as ``nn.AdaptiveAvgPool2d(1)`` or ``F.adaptive_avg_pool2d(x, 1)``, and ``torch.mean``
over h×w is ``spatial_mean`` (fvcore counts the pool and not the mean).  Ops that only move,
view, split, join or allocate data cost 0 (``operators``' "moves").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ulsam_nas.analysis.operators import FUNCTIONS, METHODS
from ulsam_nas.analysis.rules import Call, Rule, register_rule
from ulsam_nas.analysis.trace import TensorInfo, TracedInt
from ulsam_nas.attention import attention_cost, get_attention, list_attention
from ulsam_nas.cost.cost import Terms
from ulsam_nas.cost.primitives import batch_norm, conv2d, elementwise, linear
from ulsam_nas.cost.symbolic import Num
from ulsam_nas.errors import InvalidInput

NOTHING = Terms()
Shaped = Callable[[Call, TensorInfo, TensorInfo], "Terms | None"]


def shaped(rule: Shaped) -> Rule:
    """A rule of a call with a tensor input and one tensor output (else: no closed form)."""

    def checked(call: Call) -> Terms | None:
        x, out = call.input, call.out
        if x is None or not isinstance(out, TensorInfo):
            return None
        return rule(call, x, out)

    return checked


def _on_output(op: str) -> Rule:
    return shaped(lambda call, x, out: elementwise(op, out.numel))


def _on_input(op: str) -> Rule:
    return shaped(lambda call, x, out: elementwise(op, x.numel))


def _moves(call: Call) -> Terms | None:
    return NOTHING


# -- convolution, linear, products -------------------------------------------------------------
def _conv_module(call: Call, x: TensorInfo, out: TensorInfo) -> Terms | None:
    m = call.module
    assert isinstance(m, nn.Conv1d | nn.Conv2d)
    kernel = math.prod(m.kernel_size)
    pixels = out.numel // m.out_channels  # output positions (× batch 1)
    terms = conv2d(
        m.in_channels // m.groups,
        m.out_channels,
        kernel,
        pixels,
        1,
        m.bias is not None,
        kernel_w=1,
        groups=m.groups,
    )
    return terms.without_params()


def _conv_function(call: Call, x: TensorInfo, out: TensorInfo) -> Terms | None:
    """``F.conv1d``/``F.conv2d`` (timm's same-padding convolutions): the weight's shape gives the
    channels and kernel, whatever the stride, dilation, padding or groups."""
    weight = call.arg(1, "weight")
    if not isinstance(weight, TensorInfo) or len(weight.shape) < 3:
        return None
    out_channels, in_per_group, *kernel = weight.shape
    bias = isinstance(call.arg(2, "bias"), TensorInfo)
    groups = x.shape[1] // in_per_group if len(x.shape) > 1 and in_per_group else 1
    pixels = out.numel // out_channels
    terms = conv2d(in_per_group, out_channels, math.prod(kernel), pixels, 1, bias, kernel_w=1, groups=groups)
    return terms.without_params()


def fused_bias(x: TensorInfo) -> bool:
    """Whether torch adds a Linear's bias inside its matrix product (``addmm``): for 2-D input,
    and for contiguous input of more dimensions (flattened to 2-D); otherwise ``matmul`` then a
    separate ``add_``, which ptflops' aten backend does not count (measured), so that bias is
    stated as ``add`` (the element-wise op torch really runs), not ``bias_add``."""
    return len(x.shape) == 2 or (len(x.shape) > 2 and x.contiguous)


def _linear_terms(in_features: int, out_features: int, bias: bool, x: TensorInfo, out: TensorInfo) -> Terms:
    rows = out.numel // out_features
    terms = linear(in_features, out_features, bias and fused_bias(x), rows).without_params()
    return terms if not bias or fused_bias(x) else terms + elementwise("add", out.numel)


def _linear_module(call: Call, x: TensorInfo, out: TensorInfo) -> Terms | None:
    m = call.module
    assert isinstance(m, nn.Linear)
    return _linear_terms(m.in_features, m.out_features, m.bias is not None, x, out)


def _linear_function(call: Call, x: TensorInfo, out: TensorInfo) -> Terms | None:
    weight = call.arg(1, "weight")
    if not isinstance(weight, TensorInfo) or len(weight.shape) != 2:
        return None
    out_features, in_features = weight.shape
    return _linear_terms(in_features, out_features, isinstance(call.arg(2, "bias"), TensorInfo), x, out)


def _matmul(call: Call, x: TensorInfo, out: TensorInfo) -> Terms | None:
    a, b = call.arg(0, "input"), call.arg(1, "other")
    if not isinstance(a, TensorInfo) or not isinstance(b, TensorInfo) or len(a.shape) < 2 or len(b.shape) < 2:
        return None
    inner = a.shape[-1]
    # fvcore counts numel(a)·p: equal to the true numel(out)·k unless a is broadcast.
    if a.numel * b.shape[-1] != out.numel * inner:
        return None
    return Terms.of({("macs", "matmul"): out.numel * inner, ("train", "matmul_grad"): 2 * out.numel * inner})


def _einsum(call: Call) -> Terms | None:
    """A product of two operands that sums over at least one index both share ("bhqd,bhkd->bhqk"):
    one MAC per point of the full index space, as torch's bmm and fvcore's einsum path count."""
    equation, operands = call.args[0], call.args[1:]
    if len(operands) == 1 and isinstance(operands[0], tuple | list):
        operands = tuple(operands[0])
    if not isinstance(equation, str) or len(operands) != 2 or "..." in equation or "->" not in equation:
        return None
    if not isinstance(call.out, TensorInfo):
        return None
    inputs, output = equation.replace(" ", "").split("->")
    terms = inputs.split(",")
    sizes: dict[str, int] = {}
    for letters, operand in zip(terms, operands, strict=True):
        if not isinstance(operand, TensorInfo) or len(letters) != len(operand.shape):
            return None
        if len(set(letters)) != len(letters):
            return None  # a diagonal
        for letter, size in zip(letters, operand.shape, strict=True):
            if sizes.setdefault(letter, size) != size:
                return None  # broadcast
    summed = set(sizes) - set(output)
    if not summed or any(letter not in terms[0] or letter not in terms[1] for letter in summed):
        return None  # an outer product, or a sum over one operand alone: not one batched product
    macs = math.prod(sizes.values())
    return Terms.of({("macs", "matmul"): macs, ("train", "matmul_grad"): 2 * macs})


def _attention(call: Call, q: TensorInfo, out: TensorInfo) -> Terms | None:
    """``F.scaled_dot_product_attention(q, k, v)`` without dropout or a causal mask: Q·Kᵀ (L·S·E
    MACs per batch and head) and the weights times V (L·S·Ev), a softmax over L·S weights, and
    an additive mask's L·S additions.  Which kernel torch runs decides what the counters see (the
    trace asks torch: ``trace.attention_kernel``), so the products are ``attention`` where a
    fused kernel runs (no counter has a formula for it on the CPU) and ``attention_math`` where
    the math fallback runs them as two ``bmm``."""
    k, v, mask = call.arg(1, "key"), call.arg(2, "value"), call.arg(3, "attn_mask")
    if not isinstance(k, TensorInfo) or not isinstance(v, TensorInfo):
        return None
    if call.arg(4, "dropout_p", 0.0) != 0.0 or call.arg(5, "is_causal", False) is not False:
        return None  # dropout (train mode) or a causal mask (the kernels skip the masked half)
    if mask is not None and not (isinstance(mask, TensorInfo) and 2 <= len(mask.shape) <= len(q.shape)):
        return None
    if len(q.shape) < 3 or len(k.shape) != len(q.shape) or len(v.shape) != len(q.shape):
        return None
    length, width, source, value_width = q.shape[-2], q.shape[-1], k.shape[-2], v.shape[-1]
    heads = q.numel // (length * width)
    if k.shape[-1] != width or v.shape[-2] != source or out.numel != heads * length * value_width:
        return None
    weights = heads * length * source
    if call.kernel is None:
        return None  # which kernel runs decides what the counters count: unknown, so no closed form
    kind = "attention_math" if call.kernel == "MATH" else "attention"
    terms: dict[tuple[str, str], Num] = {
        ("macs", kind): weights * (width + value_width),
        ("ops", "softmax"): weights,
        ("train", f"{kind}_grad"): 2 * weights * (width + value_width),  # ∂V, ∂P, ∂Q, ∂K
    }
    if mask is not None:
        terms[("ops", "add")] = weights  # the mask added to the weights
    return Terms.of(terms)


# -- normalization ------------------------------------------------------------------------------
def _batch_norm_module(call: Call, x: TensorInfo, out: TensorInfo) -> Terms | None:
    # fvcore counts 2 per element only for an affine BatchNorm on running statistics (eval).
    m = call.module
    assert isinstance(m, nn.modules.batchnorm._BatchNorm)
    if not (m.affine and m.track_running_stats):
        return None
    return batch_norm(m.num_features, x.numel).without_params()


def _batch_norm_function(call: Call, x: TensorInfo, out: TensorInfo) -> Terms | None:
    """timm's BatchNormAct2d calls ``F.batch_norm`` itself: eval, affine, as the module's rule."""
    if call.arg(5, "training", False) is not False or not isinstance(call.arg(3, "weight"), TensorInfo):
        return None
    return batch_norm(x.shape[1], x.numel).without_params() if len(x.shape) >= 2 else None


def _norm(unit: str, weight_index: int) -> Rule:
    """LayerNorm or GroupNorm: ``unit`` when affine, ``plain_<unit>`` without parameters (fvcore
    counts 5 and 4 per element)."""

    def rule(call: Call, x: TensorInfo, out: TensorInfo) -> Terms | None:
        if call.module is not None:
            affine = getattr(call.module, "elementwise_affine", getattr(call.module, "affine", False))
        else:
            affine = isinstance(call.arg(weight_index, "weight"), TensorInfo)
        return elementwise(unit if affine else f"plain_{unit}", x.numel)

    return shaped(rule)


# -- activations, pools, resizes ----------------------------------------------------------------
def _hardtanh(call: Call, x: TensorInfo, out: TensorInfo) -> Terms | None:
    if call.module is not None:
        assert isinstance(call.module, nn.Hardtanh)
        bounds = (call.module.min_val, call.module.max_val)
    else:
        bounds = (call.arg(1, "min_val", -1.0), call.arg(2, "max_val", 1.0))
    return elementwise("relu6", out.numel) if bounds == (0.0, 6.0) else None


def _resize(mode: str, out: TensorInfo) -> Terms | None:
    """A 2-D resize (the units of fvcore's rule: nearest and bilinear; others have none yet)."""
    if len(out.shape) != 4:
        return None
    if mode == "nearest":
        return elementwise("upsample_nearest", out.numel)
    if mode == "bilinear":
        return elementwise("upsample_bilinear", out.numel)
    return None


def _upsample_module(call: Call, x: TensorInfo, out: TensorInfo) -> Terms | None:
    assert isinstance(call.module, nn.Upsample)
    return _resize(str(call.module.mode), out)


def _interpolate(call: Call, x: TensorInfo, out: TensorInfo) -> Terms | None:
    return _resize(str(call.arg(3, "mode", "nearest")), out)


def adaptive_avg_unit(x: TensorInfo, out: TensorInfo, size: Any) -> str | None:
    """``global_avg_pool`` for a pool to 1×1, ``axis_avg_pool`` to one row or column, as written:
    ``(h, 1)`` with h read from the input is a column even on a map one pixel wide (Coordinate
    Attention's pools, whose closed form says so); ``adaptive_avg_pool`` to any other size."""
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
    return "global_avg_pool" if (oh, ow) == (1, 1) else "adaptive_avg_pool"


def _literal_one(size: Any) -> bool:
    return type(size) is int and size == 1  # a size read from the input (TracedInt) is not "1"


def _keeps(requested: Any, size: int, got: int) -> bool:
    """The requested side is the input's own (None, a size read from the input, or equal)."""
    return got == size and (requested is None or isinstance(requested, TracedInt) or requested == size)


def _adaptive_avg(call: Call, x: TensorInfo, out: TensorInfo) -> Terms | None:
    size = (
        call.module.output_size
        if isinstance(call.module, nn.AdaptiveAvgPool2d)
        else call.arg(1, "output_size")
    )
    op = adaptive_avg_unit(x, out, size)
    return elementwise(op, x.numel) if op else None


def _first_output(rule: Shaped) -> Rule:
    """For ops that may also return indices (``torch.max(x, dim)``, ``return_indices=True``)."""

    def unwrapped(call: Call) -> Terms | None:
        out = call.out[0] if type(call.out) is tuple and call.out else call.out
        x = call.input
        if x is None or not isinstance(out, TensorInfo):
            return None
        return rule(call, x, out)

    return unwrapped


def _adaptive_max(call: Call, x: TensorInfo, out: TensorInfo) -> Terms | None:
    return elementwise("global_max_pool", x.numel) if out.shape[-2:] == (1, 1) else None


def _avg_pool(call: Call, x: TensorInfo, out: TensorInfo) -> Terms | None:
    return elementwise("avg_pool", out.numel) if len(x.shape) == 4 else None


def _reduction(kind: str) -> Rule:
    """A mean, sum or max over h×w (every axis after the channels), over the channels, or over
    other axes (tokens, one side): each its own unit."""

    def rule(call: Call, x: TensorInfo, out: TensorInfo) -> Terms | None:
        dim = call.arg(1, "dim")
        dims = [dim] if isinstance(dim, int) and not isinstance(dim, bool) else dim
        if not isinstance(dims, tuple | list) or not dims or not all(isinstance(d, int) for d in dims):
            return None
        reduced = {d % len(x.shape) for d in dims}
        if len(x.shape) >= 3 and reduced == set(range(2, len(x.shape))) and kind in ("mean", "sum"):
            return elementwise("spatial_mean" if kind == "mean" else "spatial_sum", x.numel)
        if reduced == {1} and kind in ("mean", "amax", "max"):
            return elementwise("channel_pool", x.numel)
        return elementwise("reduce", x.numel)

    return _first_output(rule)


def _pow(call: Call, x: TensorInfo, out: TensorInfo) -> Terms | None:
    """``x ** 2`` is ``square`` (the closed forms' unit); any other power ``unary_math``."""
    squared = isinstance(call.arg(0, "input"), TensorInfo) and type(call.arg(1, "exponent")) in (int, float)
    return elementwise("square" if squared and call.arg(1, "exponent") == 2 else "unary_math", out.numel)


def _identity_in_eval(training_index: int, default: bool) -> Rule:
    """Dropout and stochastic depth: nothing when called with training=False (eval)."""
    return lambda call: NOTHING if call.arg(training_index, "training", default) is False else None


def _attention_leaf(call: Call) -> Terms | None:
    """A registered module fx cannot trace through (SimAM): its closed form, when its options
    can be read back from the module's attributes of the same names."""
    m, x = call.module, call.input
    assert m is not None
    key = ATTENTION_KEYS[type(m)]
    names = get_attention(key).option_names()
    if x is None or len(x.shape) != 4 or not all(hasattr(m, n) for n in names):
        return None
    try:
        cost = attention_cost(key, *x.shape[1:], **{n: getattr(m, n) for n in names})
    except InvalidInput:
        return None
    return Terms(macs=cost.macs_by, ops=cost.ops, train=cost.train_by)


ATTENTION_KEYS: dict[type, str] = {
    cls: key for key in list_attention() if isinstance(cls := get_attention(key).module_cls, type)
}

MODULE_RULES: dict[type[nn.Module], Rule] = {
    nn.Conv1d: shaped(_conv_module),
    nn.Conv2d: shaped(_conv_module),
    nn.Linear: shaped(_linear_module),
    nn.BatchNorm1d: shaped(_batch_norm_module),
    nn.BatchNorm2d: shaped(_batch_norm_module),
    nn.LayerNorm: _norm("layer_norm", 2),
    nn.GroupNorm: _norm("group_norm", 2),
    nn.SiLU: _on_output("silu"),
    nn.GELU: _on_output("gelu"),
    nn.Tanh: _on_output("tanh"),
    nn.LeakyReLU: _on_output("leaky_relu"),
    nn.AvgPool2d: _on_output("avg_pool"),
    nn.Upsample: shaped(_upsample_module),
    nn.ReLU: _on_output("relu"),
    nn.ReLU6: _on_output("relu6"),
    nn.Hardtanh: shaped(_hardtanh),
    nn.Sigmoid: _on_output("sigmoid"),
    nn.Hardswish: _on_output("hardswish"),
    nn.Hardsigmoid: _on_output("hardsigmoid"),
    nn.Softmax: _on_output("softmax"),
    nn.MaxPool2d: _on_input("max_pool"),
    nn.AdaptiveAvgPool2d: shaped(_adaptive_avg),
    nn.AdaptiveMaxPool2d: _first_output(_adaptive_max),
    nn.Identity: _moves,
    nn.Flatten: _moves,
    nn.Unflatten: _moves,
    nn.Dropout: _moves,  # eval mode: the identity
    nn.Dropout1d: _moves,
    nn.Dropout2d: _moves,
}

# The kinds of ``operators.FUNCTIONS``/``METHODS``: one rule each.
KIND_RULES: dict[str, Rule] = {
    **{
        kind: _on_output(kind)
        for kind in ("add", "sub", "mul", "div", "relu", "relu6", "sigmoid", "hardswish", "hardsigmoid")
    },
    **{kind: _on_output(kind) for kind in ("softmax", "silu", "gelu", "tanh", "leaky_relu", "square")},
    "unary_math": _on_output("unary_math"),
    "normalize": _on_input("normalize"),
    "cumsum": _on_input("cumsum"),
    "any_reduction": _first_output(lambda call, x, out: elementwise("reduce", x.numel)),
    "moves": _moves,
    "pow": shaped(_pow),
    "matmul": shaped(_matmul),
    "einsum": _einsum,
    "conv": shaped(_conv_function),
    "linear": shaped(_linear_function),
    "sdpa": shaped(_attention),
    **{kind: _reduction(kind) for kind in ("mean", "sum", "amax", "max")},
    "hardtanh": shaped(_hardtanh),
    "max_pool2d": _first_output(lambda call, x, out: elementwise("max_pool", x.numel)),
    "adaptive_avg_pool2d": shaped(_adaptive_avg),
    "adaptive_max_pool2d": _first_output(_adaptive_max),
    "avg_pool2d": shaped(_avg_pool),
    "interpolate": shaped(_interpolate),
    "batch_norm": shaped(_batch_norm_function),
    "layer_norm": _norm("layer_norm", 2),
    "group_norm": _norm("group_norm", 2),
    "dropout": _identity_in_eval(2, True),
}


def _register() -> None:
    for cls, rule in MODULE_RULES.items():
        register_rule(cls, rule)
    for cls in ATTENTION_KEYS:
        register_rule(cls, _attention_leaf)
    for function, kind in FUNCTIONS.items():
        register_rule(function, KIND_RULES[kind])
    for method, kind in METHODS.items():
        register_rule(getattr(torch.Tensor, method), KIND_RULES[kind])
    # torchvision's stochastic depth (fx-wrapped, one call): torchvision cannot be imported here.
    register_rule("torchvision.ops.stochastic_depth.stochastic_depth", _identity_in_eval(3, True))


_register()
