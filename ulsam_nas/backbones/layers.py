"""The layers the built-in backbones (MobileNets, ResNet-18) are made of, each with its nn.Module
and its closed-form cost.

A :class:`LayerSpec` is one row of an architecture table after the width multiplier has been
applied; ``build()`` makes the module and ``terms(h, w)`` its exact cost on an h×w input, from
the shared primitives.  Style follows the attention modules (see ``attention.registry``):
layers with parameters and activations are ``nn`` modules, pooling is functional, the residual
is ``+``.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ulsam_nas.cost.cost import Cost, Terms, compile_cost
from ulsam_nas.cost.primitives import batch_norm, conv2d, elementwise
from ulsam_nas.cost.symbolic import Num, Poly, as_int


def out_size(size: int, stride: int) -> int:
    """Output side of a k×k conv with padding k//2 (odd k): ⌈size / stride⌉."""
    return (size - 1) // stride + 1


_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "hardswish": nn.Hardswish,
}


def _conv_bn_act(
    cin: int, cout: int, kernel: int, stride: int, groups: int, act: str | None
) -> list[nn.Module]:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act:
        layers.append(_ACTIVATIONS[act]())
    return layers


def _conv_bn_act_terms(
    in_per_group: Num, cout: Num, kernel: int, h: Num, w: Num, act: str | None, groups: Num = 1
) -> Terms:
    parts = [
        conv2d(in_per_group, cout, kernel, h, w, bias=False, groups=groups),
        batch_norm(cout, cout * h * w),
    ]
    if act:
        parts.append(elementwise(act, cout * h * w))
    return Terms.total(parts)


class InvertedResidual(nn.Module):
    def __init__(self, body: nn.Sequential, residual: bool) -> None:
        super().__init__()
        self.body = body
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


class SqueezeExcitationV3(nn.Module):
    """MobileNetV3's SE (torchvision's ``SqueezeExcitation`` with a hard-sigmoid gate): global
    average pool → 1×1 conv + bias → ReLU → 1×1 conv + bias → hard sigmoid → channel scale."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.scale_activation = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.scale_activation(self.fc2(self.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))
        return x * scale


def se_terms(channels: Num, squeeze: Num, h: Num, w: Num) -> Terms:
    """The cost of :class:`SqueezeExcitationV3` on a channels×h×w map."""
    return Terms.total(
        [
            elementwise("global_avg_pool", channels * h * w),
            conv2d(channels, squeeze, 1, 1, 1, bias=True),
            elementwise("relu", squeeze),
            conv2d(squeeze, channels, 1, 1, 1, bias=True),
            elementwise("hardsigmoid", channels),
            elementwise("mul", channels * h * w),
        ]
    )


class Bottleneck(nn.Module):
    """A MobileNetV3 block: its layers in ``block`` by name (expand, depthwise, se, project), so
    that a plan can swap or remove the SE by name; the residual is ``+``."""

    def __init__(self, block: nn.Sequential, residual: bool) -> None:
        super().__init__()
        self.block = block
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


class BasicBlock(nn.Module):
    """ResNet's basic block (He et al. 2016; torchvision's ``BasicBlock`` and its names): two
    3×3 conv + BN, a 1×1 conv + BN shortcut when the shape changes, ``+``, ReLU."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Sizes(NamedTuple):
    """Every size a layer's cost depends on (ints, or symbols when compiling)."""

    cin: Num
    cout: Num
    hidden: Num  # expanded channels (inverted residual, MobileNetV3 block)
    squeeze: Num  # the SE's reduced width (MobileNetV3 block with SE)
    h: Num
    w: Num
    mh: Num  # the stem's map between conv and max pool (ResNet)
    mw: Num
    oh: Num
    ow: Num


class Shape(NamedTuple):
    """What selects a layer's cost formula (one compiled function per shape)."""

    kind: str
    kernel: int
    expanded: bool
    activation: str
    residual: bool
    se: bool
    downsample: bool


class LayerSpec(NamedTuple):
    """One indexed layer of an architecture table, after the width multiplier: a conv+BN+act
    (``conv``; ``conv_pool`` adds ResNet's 3×3 stride-2 max pool), a depthwise-separable pair
    (MobileNetV1), an inverted residual (MobileNetV2), a MobileNetV3 block (``bneck``, with SE
    when ``squeeze`` > 0) or a ResNet basic block.  A NamedTuple: immutable, hashable and cheap
    to build, since a backbone's table is rebuilt for every new (α, resolution, classes, stem)."""

    position: int  # the layer index in its backbone (named so as not to shadow tuple.index)
    kind: str
    in_channels: int
    out_channels: int
    stride: int  # the layer's total stride (conv_pool: conv 2 × pool 2 = 4)
    kernel: int = 3
    expansion: int = 1
    activation: str = "relu"
    hidden: int = 0  # explicit expanded width (bneck); 0: in_channels × expansion
    squeeze: int = 0  # SE width (bneck); 0: no SE

    @property
    def hidden_channels(self) -> int:
        return self.hidden or self.in_channels * self.expansion  # torchvision's round(inp * t)

    @property
    def residual(self) -> bool:
        return self.kind in ("inverted_residual", "bneck") and self.keeps_shape

    @property
    def keeps_shape(self) -> bool:
        return self.stride == 1 and self.in_channels == self.out_channels

    def module_channels(self, action: str) -> int:
        """The channels a placed module works on: a swapped-in one where the SE was, on the
        block's expanded channels; otherwise on the layer's output."""
        return self.hidden_channels if action == "swap" else self.out_channels

    @property
    def has_se(self) -> bool:
        return self.kind == "bneck" and self.squeeze > 0

    @property
    def shape(self) -> Shape:
        expanded = self.hidden_channels != self.in_channels
        downsample = self.kind == "basic" and not self.keeps_shape
        return Shape(
            self.kind, self.kernel, expanded, self.activation, self.residual, self.has_se, downsample
        )

    def describe(self) -> str:
        k = f"{self.kernel}×{self.kernel}"
        if self.kind == "conv":
            return f"conv{k}"
        if self.kind == "conv_pool":
            return f"conv{k}+max-pool3×3"
        if self.kind == "separable":
            return "dw3×3+pw1×1"
        if self.kind == "basic":
            return "basic block" + (" +1×1 shortcut" if self.shape.downsample else "")
        if self.kind == "bneck":
            se = f" SE→{self.squeeze}" if self.has_se else ""
            return f"bneck dw{k} exp {self.hidden_channels}{se} {self.activation}"
        return f"inverted residual t={self.expansion}"

    def build(self, gate: nn.Module | None = None, keep_gate: bool = True) -> nn.Module:
        """The layer's module.  A ``bneck`` with SE takes ``gate`` in the SE's place (a plan's
        swap), or drops its SE when ``keep_gate`` is False."""
        cin, cout, s, act = self.in_channels, self.out_channels, self.stride, self.activation
        if self.kind == "conv":
            return nn.Sequential(*_conv_bn_act(cin, cout, self.kernel, s, 1, act))
        if self.kind == "conv_pool":
            pool = nn.MaxPool2d(3, 2, padding=1)
            return nn.Sequential(*_conv_bn_act(cin, cout, self.kernel, 2, 1, act), pool)
        if self.kind == "separable":
            return nn.Sequential(
                *_conv_bn_act(cin, cin, 3, s, cin, act), *_conv_bn_act(cin, cout, 1, 1, 1, act)
            )
        if self.kind == "basic":
            return BasicBlock(cin, cout, s)
        if self.kind == "bneck":
            return self._build_bneck(gate, keep_gate)
        hidden = self.hidden_channels
        layers: list[nn.Module] = []
        if self.expansion != 1:
            layers += _conv_bn_act(cin, hidden, 1, 1, 1, act)
        layers += _conv_bn_act(hidden, hidden, 3, s, hidden, act)
        layers += _conv_bn_act(hidden, cout, 1, 1, 1, None)  # linear bottleneck
        return InvertedResidual(nn.Sequential(*layers), self.residual)

    def _build_bneck(self, gate: nn.Module | None, keep_gate: bool) -> nn.Module:
        hidden, act = self.hidden_channels, self.activation
        block: OrderedDict[str, nn.Module] = OrderedDict()
        if hidden != self.in_channels:
            block["expand"] = nn.Sequential(*_conv_bn_act(self.in_channels, hidden, 1, 1, 1, act))
        block["depthwise"] = nn.Sequential(
            *_conv_bn_act(hidden, hidden, self.kernel, self.stride, hidden, act)
        )
        if self.has_se and keep_gate:
            block["se"] = gate if gate is not None else SqueezeExcitationV3(hidden, self.squeeze)
        block["project"] = nn.Sequential(*_conv_bn_act(hidden, self.out_channels, 1, 1, 1, None))
        return Bottleneck(nn.Sequential(block), self.residual)

    def sizes(self, h: int, w: int) -> Sizes:
        mh, mw = (out_size(h, 2), out_size(w, 2)) if self.kind == "conv_pool" else (h, w)
        oh, ow = out_size(h, self.stride), out_size(w, self.stride)
        return Sizes(
            self.in_channels, self.out_channels, self.hidden_channels, self.squeeze, h, w, mh, mw, oh, ow
        )

    def terms(self, h: Num, w: Num) -> Terms:
        """Exact cost on an h×w input (the output is ⌈h/stride⌉×⌈w/stride⌉), from the primitives."""
        return layer_terms(self.shape, self.sizes(as_int(h), as_int(w)))

    def cost(self, h: int, w: int) -> Cost:
        """The exact Cost of :meth:`terms`, evaluated by its compiled polynomials."""
        return _compiled(self.shape)(*self.sizes(h, w))

    def gate_cost(self, h: int, w: int) -> Cost:
        """The exact Cost of this block's SE alone (what a swap takes out)."""
        sizes = self.sizes(h, w)
        return _compiled_se()(sizes.hidden, sizes.squeeze, sizes.oh, sizes.ow)


def layer_terms(shape: Shape, z: Sizes) -> Terms:
    """A layer's cost given all its sizes: polynomial in them, so it also runs on symbols."""
    act = shape.activation
    if shape.kind == "conv":
        return _conv_bn_act_terms(z.cin, z.cout, shape.kernel, z.oh, z.ow, act)
    if shape.kind == "conv_pool":
        conv = _conv_bn_act_terms(z.cin, z.cout, shape.kernel, z.mh, z.mw, act)
        return conv + elementwise("max_pool", z.cout * z.mh * z.mw)
    if shape.kind == "separable":
        return _conv_bn_act_terms(1, z.cin, 3, z.oh, z.ow, act, groups=z.cin) + _conv_bn_act_terms(
            z.cin, z.cout, 1, z.oh, z.ow, act
        )
    if shape.kind == "basic":
        return _basic_terms(shape, z)
    parts = []
    if shape.expanded:
        parts.append(_conv_bn_act_terms(z.cin, z.hidden, 1, z.h, z.w, act))
    parts.append(_conv_bn_act_terms(1, z.hidden, shape.kernel, z.oh, z.ow, act, groups=z.hidden))
    if shape.se:
        parts.append(se_terms(z.hidden, z.squeeze, z.oh, z.ow))
    parts.append(_conv_bn_act_terms(z.hidden, z.cout, 1, z.oh, z.ow, None))
    if shape.residual:
        parts.append(elementwise("add", z.cout * z.oh * z.ow))
    return Terms.total(parts)


def _basic_terms(shape: Shape, z: Sizes) -> Terms:
    out = z.cout * z.oh * z.ow
    parts = [
        _conv_bn_act_terms(z.cin, z.cout, 3, z.oh, z.ow, "relu"),
        _conv_bn_act_terms(z.cout, z.cout, 3, z.oh, z.ow, None),
        elementwise("add", out),
        elementwise("relu", out),
    ]
    if shape.downsample:
        parts.append(_conv_bn_act_terms(z.cin, z.cout, 1, z.oh, z.ow, None))
    return Terms.total(parts)


@functools.cache
def _compiled(shape: Shape) -> Callable[..., Cost]:
    # Run the layer's definition once on symbols, then compile the polynomials: one function per
    # layer shape, shared by every width, resolution and backbone.
    symbols = Sizes(*(Poly.symbol(name, 1) for name in Sizes._fields))
    return compile_cost(list(Sizes._fields), layer_terms(shape, symbols), "exact")


@functools.cache
def _compiled_se() -> Callable[..., Cost]:
    names = ["hidden", "squeeze", "oh", "ow"]
    return compile_cost(names, se_terms(*(Poly.symbol(n, 1) for n in names)), "exact")
