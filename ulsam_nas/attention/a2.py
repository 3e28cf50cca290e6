"""A²-Net double attention (Chen, Kalantidis, Li, Yan, Feng: "A²-Nets: Double Attention
Networks", NeurIPS 2018, arXiv:1810.11579).

No official code was released; this follows the paper and the widely used PyTorch ports
(External-Attention-pytorch ``DoubleAttention``): three 1×1 convs m→t with bias give features
A, attention maps B and attention vectors V; gathering G = A·softmax(B)ᵀ (t×t), distributing
Z = G·softmax(V) (t×hw), then the reconstruct 1×1 conv t→m with bias; no residual.
c_m = c_n = t = ``inner_channels`` (default max(1, ⌊m/8⌋), the ULSAM paper's t = m/8).

Softmax axes: B is soft-maxed over the h·w positions (each of the t gathering maps is a
distribution over space) and V over the t channels at each position, as in the paper.  The
ports soft-max V over positions instead; the axis changes no count.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ulsam_nas.attention._common import check_positive_int
from ulsam_nas.attention.registry import AttentionSpec, register_attention
from ulsam_nas.cost.cost import Terms
from ulsam_nas.cost.primitives import conv2d, elementwise, matmul
from ulsam_nas.cost.symbolic import Num
from ulsam_nas.errors import InvalidInput


@dataclass(frozen=True)
class A2Config:
    inner_channels: int | None = None
    reconstruct: bool = True

    def resolved(self, channels: int) -> A2Config:
        if self.inner_channels is None:
            return replace(self, inner_channels=max(1, channels // 8))
        return self

    def validate(self, channels: int, height: int | None = None, width: int | None = None) -> None:
        t = check_positive_int("inner_channels", self.inner_channels)
        if not self.reconstruct and t != channels:
            raise InvalidInput(
                f"reconstruct=false keeps inner_channels={t} output channels, not channels={channels}; "
                f"allowed: reconstruct=true, or inner_channels={channels}"
            )


class DoubleAttention(nn.Module):
    def __init__(self, channels: int, config: A2Config | None = None) -> None:
        super().__init__()
        config = (config or A2Config()).resolved(channels)
        config.validate(channels)
        t = config.inner_channels
        assert t is not None
        self.features = nn.Conv2d(channels, t, 1)
        self.gather_maps = nn.Conv2d(channels, t, 1)
        self.distribute_vectors = nn.Conv2d(channels, t, 1)
        self.reconstruct = nn.Conv2d(t, channels, 1) if config.reconstruct else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        features = self.features(x).flatten(2)  # (b, t, hw)
        maps = F.softmax(self.gather_maps(x).flatten(2), dim=-1)  # over positions
        vectors = F.softmax(self.distribute_vectors(x).flatten(2), dim=1)  # over channels
        descriptors = torch.bmm(features, maps.transpose(1, 2))  # (b, t, t)
        z = torch.bmm(descriptors, vectors).reshape(b, -1, h, w)  # (b, t, hw)
        return self.reconstruct(z) if self.reconstruct is not None else z


def exact_cost(m: Num, h: Num, w: Num, *, inner_channels: Num, reconstruct: bool) -> Terms:
    t, hw = inner_channels, h * w
    terms = (
        conv2d(m, t, 1, h, w, bias=True).times(3)  # A, B, V
        + elementwise("softmax", t * hw).times(2)
        + matmul(t, hw, t)  # gather: A·Bᵀ
        + matmul(t, t, hw)  # distribute: G·V
    )
    if reconstruct:
        terms = terms + conv2d(t, m, 1, h, w, bias=True)
    return terms


def paper_cost(m: Num, h: Num, w: Num, *, inner_channels: Num, reconstruct: bool) -> Terms:
    # Paper: 2mt params and 2mthw FLOPs = two of the four 1×1 convs; drops the other two convs
    # (2mt params, 2mthw MACs), every bias and both bmm products (2t²hw MACs).
    convs = conv2d(m, inner_channels, 1, h, w, bias=False).times(2)
    return convs.without_ops()


def _sample_config(rng: random.Random, channels: int) -> dict[str, Any]:
    if rng.random() < 0.2:  # the only shape-keeping form without the reconstruct conv
        return {"inner_channels": channels, "reconstruct": rng.random() < 0.5}
    return {"inner_channels": rng.choice([None, rng.randint(1, 64)])}


SPEC = register_attention(
    AttentionSpec(
        key="a2",
        title="A²-Net",
        citation="Chen et al., A²-Nets: Double Attention Networks, NeurIPS 2018",
        config_cls=A2Config,
        module_cls=DoubleAttention,
        exact_cost=exact_cost,
        paper_cost=paper_cost,
        symbols={"inner_channels": "t"},
        uses_conv1x1=True,
        sample_config=_sample_config,
        paper_note="counts two of the four 1×1 convs; drops the others, all biases and both bmm products",
    )
)
