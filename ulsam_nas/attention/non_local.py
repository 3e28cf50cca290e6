"""Non-local block, embedded-Gaussian form (Wang, Girshick, Gupta, He: "Non-local Neural
Networks", CVPR 2018, arXiv:1711.07971).

Follows the official code (facebookresearch/video-nonlocal-net, ``nonlocal_helper.py``):
θ, φ, g are 1×1 convs m→i with bias, i = ⌊m/2⌋; the affinity θᵀφ is scaled by i^-½ and
soft-maxed over the key positions; y = f·g goes through W (1×1 conv i→m, bias) and BatchNorm
with γ initialised to 0, and z = x + BN(W y).  ``subsample=True`` is the official default: a
2×2 max-pool of the input before φ and g (keys/values on a ⌊h/2⌋×⌊w/2⌋ grid).  This tool's
default is ``subsample=False``, the form the ULSAM paper compares against; otherwise no
divergence from the official code.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ulsam_nas.attention.registry import AttentionSpec, register_attention
from ulsam_nas.cost.cost import Terms
from ulsam_nas.cost.primitives import batch_norm, conv2d, elementwise, matmul
from ulsam_nas.cost.symbolic import Num, derived, ratio
from ulsam_nas.errors import InvalidInput


@dataclass(frozen=True)
class NonLocalConfig:
    subsample: bool = False

    def resolved(self, channels: int) -> NonLocalConfig:
        return self

    def validate(self, channels: int, height: int | None = None, width: int | None = None) -> None:
        if channels < 2:
            raise InvalidInput(f"channels={channels} is too small for non_local; allowed: >= 2")
        if self.subsample and height is not None and width is not None and min(height, width) < 2:
            raise InvalidInput(
                f"subsample=true needs a map of at least 2×2, got {height}×{width}; "
                "allowed: height, width >= 2 (or subsample=false)"
            )


class NonLocal(nn.Module):
    def __init__(self, channels: int, config: NonLocalConfig | None = None) -> None:
        super().__init__()
        config = config or NonLocalConfig()
        config.validate(channels)
        inner = channels // 2
        self.theta = nn.Conv2d(channels, inner, 1)
        self.phi = nn.Conv2d(channels, inner, 1)
        self.g = nn.Conv2d(channels, inner, 1)
        self.pool = nn.MaxPool2d(2) if config.subsample else None
        self.out = nn.Conv2d(inner, channels, 1)
        self.bn = nn.BatchNorm2d(channels)
        nn.init.zeros_(self.bn.weight)  # official BN_INIT_GAMMA = 0: the block starts as identity
        self.scale = inner**-0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        source = self.pool(x) if self.pool is not None else x
        theta = self.theta(x).flatten(2)  # (b, i, hw)
        phi = self.phi(source).flatten(2)  # (b, i, hw')
        g = self.g(source).flatten(2)  # (b, i, hw')
        affinity = torch.matmul(theta.transpose(1, 2), phi) * self.scale  # (b, hw, hw')
        y = torch.matmul(F.softmax(affinity, dim=-1), g.transpose(1, 2))  # (b, hw, i)
        y = y.transpose(1, 2).reshape(b, -1, h, w)
        return x + self.bn(self.out(y))


def _inner(m: Num) -> Num:
    return derived("i", _half, [m], "⌊m/2⌋", ideal=ratio(m, 2))


def _half(size: int) -> int:
    return size // 2


def exact_cost(m: Num, h: Num, w: Num, *, subsample: bool) -> Terms:
    i = _inner(m)
    if subsample:
        kh = derived("h'", _half, [h], "⌊h/2⌋", ideal=ratio(h, 2))
        kw = derived("w'", _half, [w], "⌊w/2⌋", ideal=ratio(w, 2))
        pool = elementwise("max_pool", m * h * w)
    else:
        kh, kw, pool = h, w, Terms()
    queries, keys = h * w, kh * kw
    return (
        conv2d(m, i, 1, h, w, bias=True)  # θ
        + pool
        + conv2d(m, i, 1, kh, kw, bias=True).times(2)  # φ and g
        + matmul(queries, i, keys)  # θᵀφ
        + elementwise("mul", queries * keys)  # scale by i^-1/2
        + elementwise("softmax", queries * keys)
        + matmul(queries, keys, i)  # f·gᵀ
        + conv2d(i, m, 1, h, w, bias=True)  # W
        + batch_norm(m, m * h * w)
        + elementwise("add", m * h * w)  # residual
    )


def paper_cost(m: Num, h: Num, w: Num, *, subsample: bool) -> Terms:
    # Paper: 2m² params, 2m²hw FLOPs = the weights of θ, φ, g and W at full resolution (it
    # assumes no subsampling); drops all biases, the BN, both affinity matmuls and the softmax.
    convs = conv2d(m, _inner(m), 1, h, w, bias=False).times(4)
    return convs.without_ops()


SPEC = register_attention(
    AttentionSpec(
        key="non_local",
        title="Non-local",
        citation="Wang et al., Non-local Neural Networks, CVPR 2018",
        config_cls=NonLocalConfig,
        module_cls=NonLocal,
        exact_cost=exact_cost,
        paper_cost=paper_cost,
        uses_conv1x1=True,
        sample_config=lambda rng, channels: {"subsample": rng.random() < 0.5},
        paper_note=(
            "drops the conv biases, the BN, both affinity matmuls (m·(hw)² MACs) and the softmax; "
            "assumes no subsampling"
        ),
    )
)
