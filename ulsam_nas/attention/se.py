"""Squeeze-and-Excitation (Hu, Shen, Sun: "Squeeze-and-Excitation Networks", CVPR 2018,
arXiv:1709.01507).

Follows the official Caffe model (hujie-frank/SENet): global average pool → FC(m→c) + bias →
ReLU → FC(c→m) + bias → sigmoid → channel-wise scale, with c = max(1, ⌊m/r⌋).  The FC layers
are ``nn.Linear`` like the official InnerProduct layers (torchvision and timm use 1×1 convs,
which count the same).  No divergence from the official code.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ulsam_nas.attention._common import check_reduction, reduced_width, sample_reduction
from ulsam_nas.attention.registry import AttentionSpec, register_attention
from ulsam_nas.cost.cost import Terms
from ulsam_nas.cost.primitives import elementwise, linear
from ulsam_nas.cost.symbolic import Num


@dataclass(frozen=True)
class SEConfig:
    reduction: int = 16

    def resolved(self, channels: int) -> SEConfig:
        return self

    def validate(self, channels: int, height: int | None = None, width: int | None = None) -> None:
        check_reduction(channels, self.reduction)


class SqueezeExcitation(nn.Module):
    def __init__(self, channels: int, config: SEConfig | None = None) -> None:
        super().__init__()
        config = config or SEConfig()
        config.validate(channels)
        reduced = max(1, channels // config.reduction)
        self.fc1 = nn.Linear(channels, reduced)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(reduced, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = torch.sigmoid(self.fc2(self.relu(self.fc1(F.adaptive_avg_pool2d(x, 1).flatten(1)))))
        return x * scale[:, :, None, None]


def exact_cost(m: Num, h: Num, w: Num, *, reduction: Num) -> Terms:
    c = reduced_width(m, reduction)
    return (
        elementwise("global_avg_pool", m * h * w)
        + linear(m, c, bias=True)
        + elementwise("relu", c)
        + linear(c, m, bias=True)
        + elementwise("sigmoid", m)
        + elementwise("mul", m * h * w)
    )


def paper_cost(m: Num, h: Num, w: Num, *, reduction: Num) -> Terms:
    # Paper: 2m²/r params and FLOPs = the two FC weight matrices; drops the biases, the pool,
    # the sigmoid and the scaling.
    c = reduced_width(m, reduction)
    fcs = linear(m, c, bias=False) + linear(c, m, bias=False)
    return fcs.without_ops()


SPEC = register_attention(
    AttentionSpec(
        key="se",
        title="SE",
        citation="Hu et al., Squeeze-and-Excitation Networks, CVPR 2018",
        config_cls=SEConfig,
        module_cls=SqueezeExcitation,
        exact_cost=exact_cost,
        paper_cost=paper_cost,
        symbols={"reduction": "r"},
        uses_mlp=True,
        sample_config=sample_reduction,
        paper_note="drops the FC biases (m/r + m params); pooling, sigmoid and scaling are not MACs",
    )
)
