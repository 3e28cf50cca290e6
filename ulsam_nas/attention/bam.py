"""Bottleneck Attention Module (Park, Woo, Lee, Kweon: "BAM: Bottleneck Attention Module",
BMVC 2018, arXiv:1807.06514).

Follows the official code (Jongchan/attention-module, ``MODELS/bam.py``, defaults r = 16, one
hidden FC layer, two dilated convs with dilation 4): channel gate GAP → FC(m→c) + bias →
BatchNorm1d → ReLU → FC(c→m) + bias; spatial gate 1×1 conv m→c + BN + ReLU, 2 × [3×3 conv
c→c, dilation 4, padding 4, + BN + ReLU], 1×1 conv c→1; output ``(1 + sigmoid(Mc · Ms)) · x``
(the code's product; the paper writes σ(Mc + Ms)).  c = max(1, ⌊m/r⌋).

Divergence: the official channel gate average-pools with an h×h kernel (``avg_pool2d(x,
x.size(2))``), which is global only on square maps and breaks or pools a partial window on
non-square ones; this implementation pools globally over the whole h×w map (identical on square
maps).  The official file's undefined ``gate_activation`` reference (issue #27) is absent.
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

DILATION = 4
DILATED_CONVS = 2


@dataclass(frozen=True)
class BAMConfig:
    reduction: int = 16

    def resolved(self, channels: int) -> BAMConfig:
        return self

    def validate(self, channels: int, height: int | None = None, width: int | None = None) -> None:
        check_reduction(channels, self.reduction)


def _conv_bn_relu(cin: int, cout: int, kernel: int, dilation: int = 1) -> list[nn.Module]:
    padding = dilation * (kernel // 2)
    return [nn.Conv2d(cin, cout, kernel, padding=padding, dilation=dilation), nn.BatchNorm2d(cout), nn.ReLU()]


class BAM(nn.Module):
    def __init__(self, channels: int, config: BAMConfig | None = None) -> None:
        super().__init__()
        config = config or BAMConfig()
        config.validate(channels)
        c = max(1, channels // config.reduction)
        self.channel_gate = nn.Sequential(
            nn.Linear(channels, c), nn.BatchNorm1d(c), nn.ReLU(), nn.Linear(c, channels)
        )
        layers = _conv_bn_relu(channels, c, 1)
        for _ in range(DILATED_CONVS):
            layers += _conv_bn_relu(c, c, 3, DILATION)
        self.spatial_gate = nn.Sequential(*layers, nn.Conv2d(c, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channel = self.channel_gate(F.adaptive_avg_pool2d(x, 1).flatten(1))[:, :, None, None]
        spatial = self.spatial_gate(x)
        return (1 + torch.sigmoid(channel * spatial)) * x


def exact_cost(m: Num, h: Num, w: Num, *, reduction: Num) -> Terms:
    c, hw = reduced_width(m, reduction), h * w
    channel_gate = (
        elementwise("global_avg_pool", m * hw)
        + linear(m, c, bias=True)
        + batch_norm(c, c)
        + elementwise("relu", c)
        + linear(c, m, bias=True)
    )
    dilated = conv2d(c, c, 3, h, w, bias=True) + batch_norm(c, c * hw) + elementwise("relu", c * hw)
    spatial_gate = (
        conv2d(m, c, 1, h, w, bias=True)
        + batch_norm(c, c * hw)
        + elementwise("relu", c * hw)
        + dilated.times(DILATED_CONVS)
        + conv2d(c, 1, 1, h, w, bias=True)
    )
    combine = (
        elementwise("mul", m * hw)  # Mc · Ms, broadcast to m×h×w
        + elementwise("sigmoid", m * hw)
        + elementwise("add", m * hw)  # 1 + σ
        + elementwise("mul", m * hw)  # · x
    )
    return channel_gate + spatial_gate + combine


def paper_cost(m: Num, h: Num, w: Num, *, reduction: Num) -> Terms:
    # Paper: params 4m²/r + 18m²/r², FLOPs 2m²/r + (4m²/r + 18m²/r²)hw.  It counts the spatial
    # 1×1 reduction as 2m²/r (true: m²/r) and multiplies *all* its params, the channel MLP's
    # included, by hw; it drops every bias, every BN and the final 1×1 conv c→1.
    c, hw = reduced_width(m, reduction), h * w
    mlp = linear(m, c, bias=False) + linear(c, m, bias=False)
    params = mlp.total_params + 2 * m * c + DILATED_CONVS * 9 * c * c
    return Terms(params={"weight": params}, macs={"linear": mlp.total_macs, "conv": params * hw})


SPEC = register_attention(
    AttentionSpec(
        key="bam",
        title="BAM",
        citation="Park et al., BAM: Bottleneck Attention Module, BMVC 2018",
        config_cls=BAMConfig,
        module_cls=BAM,
        exact_cost=exact_cost,
        paper_cost=paper_cost,
        symbols={"reduction": "r"},
        uses_mlp=True,
        uses_conv1x1=True,
        sample_config=sample_reduction,
        paper_note=(
            "counts the spatial 1×1 reduction twice, applies hw to the channel MLP's params, and "
            "drops all biases, all BN and the final 1×1 conv"
        ),
    )
)
