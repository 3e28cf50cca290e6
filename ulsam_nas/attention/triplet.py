"""Triplet attention (Misra, Nalamada, Arasanipalai, Hou: "Rotate to Attend: Convolutional
Triplet Attention Module", WACV 2021, arXiv:2010.03045).

Follows the official ``TripletAttention`` (landskape-ai/triplet-attention,
``triplet_attention.py``): three gates, each a Z-pool (max and mean over its first non-batch
axis, stacked as 2 maps) → k×k conv 2→1 without bias → BatchNorm (1 channel) → sigmoid → scale.
The gates see x with channels and height swapped (they pool over h and gate an m×w map), with
channels and width swapped (pool over w, an h×m map), and x itself (pool over m, an h×w map);
the output is the mean of the three (of the first two with ``no_spatial``).  k = 7.

Divergences, stated: the official file hard-codes k = 7; here ``kernel_size`` (odd) may change
it.  Its constructor's only argument is ``no_spatial``, so ``TripletAttention(512)`` — a
channel count passed as users pass it to every other module — silently drops the spatial gate;
here the channel count is the first argument and ``no_spatial`` defaults to false.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ulsam_nas.attention._common import check_positive_int
from ulsam_nas.attention.registry import AttentionSpec, register_attention
from ulsam_nas.cost.cost import Terms
from ulsam_nas.cost.primitives import batch_norm, conv2d, elementwise
from ulsam_nas.cost.symbolic import Num
from ulsam_nas.errors import InvalidInput


@dataclass(frozen=True)
class TripletConfig:
    kernel_size: int = 7
    no_spatial: bool = False

    def resolved(self, channels: int) -> TripletConfig:
        return self

    def validate(self, channels: int, height: int | None = None, width: int | None = None) -> None:
        check_positive_int("kernel_size", self.kernel_size)
        if self.kernel_size % 2 == 0:
            raise InvalidInput(f"kernel_size={self.kernel_size} is even; allowed: an odd positive integer")


class Gate(nn.Module):
    """Z-pool over dim 1 → k×k conv 2→1 → BN → sigmoid → scale (the official AttentionGate)."""

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=(kernel_size - 1) // 2, bias=False)
        self.bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat((x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)), dim=1)
        return x * torch.sigmoid(self.bn(self.conv(pooled)))


class TripletAttention(nn.Module):
    def __init__(self, channels: int, config: TripletConfig | None = None) -> None:
        super().__init__()
        config = config or TripletConfig()
        config.validate(channels)
        self.cw = Gate(config.kernel_size)  # channels and height swapped: pools over h
        self.hc = Gate(config.kernel_size)  # channels and width swapped: pools over w
        self.hw = None if config.no_spatial else Gate(config.kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        over_h = self.cw(x.permute(0, 2, 1, 3).contiguous()).permute(0, 2, 1, 3).contiguous()
        over_w = self.hc(x.permute(0, 3, 2, 1).contiguous()).permute(0, 3, 2, 1).contiguous()
        if self.hw is None:
            return 1 / 2 * (over_h + over_w)
        return 1 / 3 * (self.hw(x) + over_h + over_w)


def _gate(k: Num, m: Num, h: Num, w: Num, pooled_rows: Num, pooled_cols: Num) -> Terms:
    """One gate on a map whose pooled axis leaves pooled_rows × pooled_cols positions."""
    positions = pooled_rows * pooled_cols
    return (
        elementwise("channel_pool", 2 * m * h * w)
        + conv2d(2, 1, k, pooled_rows, pooled_cols, bias=False)
        + batch_norm(1, positions)
        + elementwise("sigmoid", positions)
        + elementwise("mul", m * h * w)
    )


def exact_cost(m: Num, h: Num, w: Num, *, kernel_size: Num, no_spatial: bool) -> Terms:
    k, mhw = kernel_size, m * h * w
    gates = _gate(k, m, h, w, m, w) + _gate(k, m, h, w, h, m)
    if no_spatial:
        return gates + elementwise("add", mhw) + elementwise("mul", mhw)
    return gates + _gate(k, m, h, w, h, w) + elementwise("add", 2 * mhw) + elementwise("mul", mhw)


def paper_cost(m: Num, h: Num, w: Num, *, kernel_size: Num, no_spatial: bool) -> Terms:
    # The ULSAM paper's way: the k×k conv weights and MACs of each gate (drops the three BNs).
    k = kernel_size
    convs = conv2d(2, 1, k, m, w, bias=False) + conv2d(2, 1, k, h, m, bias=False)
    if not no_spatial:
        convs = convs + conv2d(2, 1, k, h, w, bias=False)
    return convs.without_ops()


def sample_config(rng: random.Random, channels: int) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if rng.random() < 0.4:
        config["kernel_size"] = rng.choice([1, 3, 5, 7, 9])
    if rng.random() < 0.3:
        config["no_spatial"] = True
    return config


SPEC = register_attention(
    AttentionSpec(
        key="triplet",
        title="Triplet",
        citation="Misra et al., Rotate to Attend: Convolutional Triplet Attention Module, WACV 2021",
        config_cls=TripletConfig,
        module_cls=TripletAttention,
        exact_cost=exact_cost,
        paper_cost=paper_cost,
        symbols={"kernel_size": "k"},
        sample_config=sample_config,
        paper_note="drops the BN of each gate (2 params each)",
    )
)
