"""Coordinate Attention (Hou, Zhou, Feng: "Coordinate Attention for Efficient Mobile Network
Design", CVPR 2021, arXiv:2103.02907).

Follows the official ``CoordAtt`` (Andrew-Qibin/CoordAttention, ``coordatt.py``) with
oup = inp = m: average-pool over w (an h×1 map) and over h (a 1×w map), concatenate along the
spatial axis, 1×1 conv m→d with bias → BatchNorm → h-swish (x·ReLU6(x + 3)/6) over the h + w
positions, split, then 1×1 conv d→m with bias and sigmoid for each direction, and
x · a_w · a_h.  d = max(8, ⌊m/r⌋), r = 32 (the official ``mip``).  No divergence from the official code.

timm's ``CoordAttn`` (key ``coord`` there, and accepted here as an alias of ``ca``) is a
different variant: width make_divisible(m/16 · 2/3, 8), convs without bias, ``nn.Hardswish``;
its counts differ from these.  The official MobileNetV2 puts the module after the depthwise
conv on the expanded channels, not at the block output: place it with a plan to reproduce that.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ulsam_nas.attention._common import check_positive_int
from ulsam_nas.attention.registry import AttentionSpec, register_attention
from ulsam_nas.cost.cost import Terms
from ulsam_nas.cost.primitives import batch_norm, conv2d, elementwise
from ulsam_nas.cost.symbolic import Num, derived, ratio

MIN_WIDTH = 8


@dataclass(frozen=True)
class CAConfig:
    reduction: int = 32

    def resolved(self, channels: int) -> CAConfig:
        return self

    def validate(self, channels: int, height: int | None = None, width: int | None = None) -> None:
        check_positive_int("reduction", self.reduction)


def _width(m: int, r: int) -> int:
    return max(MIN_WIDTH, m // r)


def reduced_width(m: Num, r: Num) -> Num:
    return derived("d", _width, [m, r], f"max({MIN_WIDTH}, ⌊m/r⌋)", ideal=ratio(m, r))


class HardSwish(nn.Module):
    """x · ReLU6(x + 3) / 6, written as the official ``h_swish`` (an ``nn.ReLU6`` module)."""

    def __init__(self) -> None:
        super().__init__()
        self.relu6 = nn.ReLU6()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (self.relu6(x + 3) / 6)


class CoordinateAttention(nn.Module):
    def __init__(self, channels: int, config: CAConfig | None = None) -> None:
        super().__init__()
        config = config or CAConfig()
        config.validate(channels)
        c = _width(channels, config.reduction)
        self.conv1 = nn.Conv2d(channels, c, 1)
        self.bn1 = nn.BatchNorm2d(c)
        self.act = HardSwish()
        self.conv_h = nn.Conv2d(c, channels, 1)
        self.conv_w = nn.Conv2d(c, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        along_h = F.adaptive_avg_pool2d(x, (h, 1))  # (B, m, h, 1)
        along_w = F.adaptive_avg_pool2d(x, (1, w)).transpose(-1, -2)  # (B, m, w, 1)
        y = self.act(self.bn1(self.conv1(torch.cat((along_h, along_w), dim=2))))
        y_h, y_w = torch.split(y, [h, w], dim=2)
        a_h = torch.sigmoid(self.conv_h(y_h))
        a_w = torch.sigmoid(self.conv_w(y_w.transpose(-1, -2)))
        return x * a_w * a_h


def exact_cost(m: Num, h: Num, w: Num, *, reduction: Num) -> Terms:
    d, positions = reduced_width(m, reduction), h + w
    return (
        elementwise("axis_avg_pool", 2 * m * h * w)  # each pool reads every element once
        + conv2d(m, d, 1, positions, 1, bias=True)
        + batch_norm(d, d * positions)
        # h-swish: x + 3, ReLU6, / 6, then x · that
        + elementwise("add", d * positions)
        + elementwise("relu6", d * positions)
        + elementwise("div", d * positions)
        + elementwise("mul", d * positions)
        + conv2d(d, m, 1, h, 1, bias=True)
        + conv2d(d, m, 1, w, 1, bias=True)
        + elementwise("sigmoid", m * positions)
        + elementwise("mul", 2 * m * h * w)
    )


def paper_cost(m: Num, h: Num, w: Num, *, reduction: Num) -> Terms:
    # The ULSAM paper's way: conv weights and MACs only (drops the biases and the BN).
    d, positions = reduced_width(m, reduction), h + w
    convs = conv2d(m, d, 1, positions, 1, bias=False) + conv2d(d, m, 1, h, 1, bias=False)
    return (convs + conv2d(d, m, 1, w, 1, bias=False)).without_ops()


def sample_config(rng: random.Random, channels: int) -> dict[str, Any]:
    """Usually a common reduction (8, 16, 32), sometimes any up to 2m (the width floor is 8)."""
    if rng.random() < 0.5:
        return {"reduction": rng.choice([8, 16, 32])}
    return {"reduction": rng.randint(1, 2 * channels)}


SPEC = register_attention(
    AttentionSpec(
        key="ca",
        title="Coordinate Attention",
        citation="Hou et al., Coordinate Attention for Efficient Mobile Network Design, CVPR 2021",
        config_cls=CAConfig,
        module_cls=CoordinateAttention,
        exact_cost=exact_cost,
        paper_cost=paper_cost,
        symbols={"reduction": "r"},
        uses_conv1x1=True,
        sample_config=sample_config,
        paper_note="drops the conv biases (d + 2m params) and the BN",
    )
)
