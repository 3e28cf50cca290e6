"""The layers MobileNets are made of, each with its nn.Module and its closed-form cost.

A :class:`LayerSpec` is one row of an architecture table after the width multiplier has been
applied; ``build()`` makes the module and ``terms(h, w)`` its exact cost on an h×w input, from
the shared primitives.  Style follows the attention modules (see ``attention.registry``):
layers with parameters and activations are ``nn`` modules, pooling is functional, the residual
is ``+``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn

from ulsam_nas.cost.cost import Cost, Terms, compile_cost
from ulsam_nas.cost.primitives import batch_norm, conv2d, elementwise
from ulsam_nas.cost.symbolic import Num, Poly, as_int


def out_size(size: int, stride: int) -> int:
    """Output side of a k×k conv with padding k//2 (odd k): ⌈size / stride⌉."""
    return (size - 1) // stride + 1


def _activation(name: str) -> nn.Module:
    return nn.ReLU6() if name == "relu6" else nn.ReLU()


def _conv_bn_act(
    cin: int, cout: int, kernel: int, stride: int, groups: int, act: str | None
) -> list[nn.Module]:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act:
        layers.append(_activation(act))
    return layers


def _conv_bn_act_terms(in_per_group: Num, cout: Num, kernel: int, h: Num, w: Num, act: str | None) -> Terms:
    parts = [conv2d(in_per_group, cout, kernel, h, w, bias=False), batch_norm(cout, cout * h * w)]
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


class LayerSpec(NamedTuple):
    """One indexed layer: a conv+BN+act, a depthwise-separable pair (MobileNetV1) or an inverted
    residual block (MobileNetV2).  A NamedTuple: immutable, hashable and cheap to build, since a
    backbone's table is rebuilt for every new (α, resolution, classes, stem)."""

    position: int  # the layer index in its backbone (named so as not to shadow tuple.index)
    kind: str
    in_channels: int
    out_channels: int
    stride: int
    kernel: int = 3
    expansion: int = 1
    activation: str = "relu"

    @property
    def hidden_channels(self) -> int:
        return self.in_channels * self.expansion  # torchvision's round(inp * t), t an integer

    @property
    def residual(self) -> bool:
        return self.kind == "inverted_residual" and self.stride == 1 and self.in_channels == self.out_channels

    @property
    def keeps_shape(self) -> bool:
        return self.stride == 1 and self.in_channels == self.out_channels

    def describe(self) -> str:
        if self.kind == "conv":
            return f"conv{self.kernel}×{self.kernel}"
        if self.kind == "separable":
            return "dw3×3+pw1×1"
        return f"inverted residual t={self.expansion}"

    def build(self) -> nn.Module:
        cin, cout, s, act = self.in_channels, self.out_channels, self.stride, self.activation
        if self.kind == "conv":
            return nn.Sequential(*_conv_bn_act(cin, cout, self.kernel, s, 1, act))
        if self.kind == "separable":
            return nn.Sequential(
                *_conv_bn_act(cin, cin, 3, s, cin, act), *_conv_bn_act(cin, cout, 1, 1, 1, act)
            )
        hidden = self.hidden_channels
        layers: list[nn.Module] = []
        if self.expansion != 1:
            layers += _conv_bn_act(cin, hidden, 1, 1, 1, act)
        layers += _conv_bn_act(hidden, hidden, 3, s, hidden, act)
        layers += _conv_bn_act(hidden, cout, 1, 1, 1, None)  # linear bottleneck
        return InvertedResidual(nn.Sequential(*layers), self.residual)

    def terms(self, h: Num, w: Num) -> Terms:
        """Exact cost on an h×w input (the output is ⌈h/stride⌉×⌈w/stride⌉), from the primitives."""
        oh, ow = out_size(as_int(h), self.stride), out_size(as_int(w), self.stride)
        return layer_terms(
            self.kind,
            self.kernel,
            self.expansion != 1,
            self.activation,
            self.residual,
            self.in_channels,
            self.out_channels,
            self.hidden_channels,
            h,
            w,
            oh,
            ow,
        )

    def cost(self, h: int, w: int) -> Cost:
        """The exact Cost of :meth:`terms`, evaluated by its compiled polynomials."""
        compiled = _compiled(self.kind, self.kernel, self.expansion != 1, self.activation, self.residual)
        return compiled(
            self.in_channels,
            self.out_channels,
            self.hidden_channels,
            h,
            w,
            out_size(h, self.stride),
            out_size(w, self.stride),
        )


def layer_terms(
    kind: str,
    kernel: int,
    expanded: bool,
    act: str,
    residual: bool,
    cin: Num,
    cout: Num,
    hidden: Num,
    h: Num,
    w: Num,
    oh: Num,
    ow: Num,
) -> Terms:
    """A layer's cost given all its sizes: polynomial in them, so it also runs on symbols."""
    if kind == "conv":
        return _conv_bn_act_terms(cin, cout, kernel, oh, ow, act)
    if kind == "separable":
        return _conv_bn_act_terms(1, cin, 3, oh, ow, act) + _conv_bn_act_terms(cin, cout, 1, oh, ow, act)
    parts = []
    if expanded:
        parts.append(_conv_bn_act_terms(cin, hidden, 1, h, w, act))
    parts.append(_conv_bn_act_terms(1, hidden, 3, oh, ow, act))
    parts.append(_conv_bn_act_terms(hidden, cout, 1, oh, ow, None))
    if residual:
        parts.append(elementwise("add", cout * oh * ow))
    return Terms.total(parts)


_SIZES = ["cin", "cout", "hidden", "h", "w", "oh", "ow"]


@functools.cache
def _compiled(kind: str, kernel: int, expanded: bool, act: str, residual: bool) -> Callable[..., Cost]:
    # Run the layer's definition once on symbols, then compile the polynomials: one function per
    # layer shape, shared by every width, resolution and backbone.
    symbols = [Poly.symbol(name, 1) for name in _SIZES]
    return compile_cost(_SIZES, layer_terms(kind, kernel, expanded, act, residual, *symbols), "exact")
