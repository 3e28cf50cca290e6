"""Convolutional Block Attention Module (Woo, Park, Lee, Kweon: "CBAM: Convolutional Block
Attention Module", ECCV 2018, arXiv:1807.06521).

Follows the official code (Jongchan/attention-module, ``MODELS/cbam.py``, r = 16, pool types
avg and max): a shared MLP [FC(m→c) + bias → ReLU → FC(c→m) + bias] on the globally avg- and
max-pooled vectors, summed, sigmoid, channel-wise scale; then channel max and mean → 7×7 conv
2→1 (no bias) → BatchNorm (1 channel) → sigmoid → spatial scale.  c = max(1, ⌊m/r⌋).  The
global pools are adaptive pools (the official code uses kernel = map size: the same result).
No divergence from the official code.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ulsam_nas.attention._common import check_reduction, reduced_width, sample_reduction
from ulsam_nas.attention.registry import AttentionSpec, register_attention
from ulsam_nas.cost.cost import Terms
from ulsam_nas.cost.primitives import batch_norm, conv2d, elementwise, linear
from ulsam_nas.cost.symbolic import Num

SPATIAL_KERNEL = 7


@dataclass(frozen=True)
class CBAMConfig:
    reduction: int = 16

    def resolved(self, channels: int) -> CBAMConfig:
        return self

    def validate(self, channels: int, height: int | None = None, width: int | None = None) -> None:
        check_reduction(channels, self.reduction)


class CBAM(nn.Module):
    def __init__(self, channels: int, config: CBAMConfig | None = None) -> None:
        super().__init__()
        config = config or CBAMConfig()
        config.validate(channels)
        c = max(1, channels // config.reduction)
        self.mlp = nn.Sequential(nn.Linear(channels, c), nn.ReLU(), nn.Linear(c, channels))
        self.spatial_conv = nn.Conv2d(2, 1, SPATIAL_KERNEL, padding=SPATIAL_KERNEL // 2, bias=False)
        self.spatial_bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.mlp(F.adaptive_avg_pool2d(x, 1).flatten(1))
        peak = self.mlp(F.adaptive_max_pool2d(x, 1).flatten(1))
        x = x * torch.sigmoid(avg + peak)[:, :, None, None]
        pooled = torch.cat((x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)), dim=1)
        return x * torch.sigmoid(self.spatial_bn(self.spatial_conv(pooled)))


def _mlp(m: Num, c: Num, bias: bool) -> Terms:
    return linear(m, c, bias) + linear(c, m, bias)


def exact_cost(m: Num, h: Num, w: Num, *, reduction: Num) -> Terms:
    c, hw = reduced_width(m, reduction), h * w
    mlp = _mlp(m, c, bias=True) + elementwise("relu", c)
    channel_gate = (
        elementwise("global_avg_pool", m * hw)
        + elementwise("global_max_pool", m * hw)
        + mlp
        + mlp.without_params()  # the shared MLP runs a second time, on the max-pooled vector
        + elementwise("add", m)
        + elementwise("sigmoid", m)
        + elementwise("mul", m * hw)
    )
    spatial_gate = (
        elementwise("channel_pool", 2 * m * hw)  # max and mean over channels
        + conv2d(2, 1, SPATIAL_KERNEL, h, w, bias=False)
        + batch_norm(1, hw)
        + elementwise("sigmoid", hw)
        + elementwise("mul", m * hw)
    )
    return channel_gate + spatial_gate


def paper_cost(m: Num, h: Num, w: Num, *, reduction: Num) -> Terms:
    # Paper: params 2m²/r + 98, FLOPs 2m²/r + 98hw.  It counts the shared MLP once although it
    # runs twice (drops 2m²/r MACs), and drops the MLP biases and the BN.
    counted = _mlp(m, reduced_width(m, reduction), bias=False) + conv2d(
        2, 1, SPATIAL_KERNEL, h, w, bias=False
    )
    return counted.without_ops()


SPEC = register_attention(
    AttentionSpec(
        key="cbam",
        title="CBAM",
        citation="Woo et al., CBAM: Convolutional Block Attention Module, ECCV 2018",
        config_cls=CBAMConfig,
        module_cls=CBAM,
        exact_cost=exact_cost,
        paper_cost=paper_cost,
        symbols={"reduction": "r"},
        uses_mlp=True,
        sample_config=sample_reduction,
        paper_note="counts the shared MLP once though it runs twice; drops the MLP biases and the BN",
    )
)
