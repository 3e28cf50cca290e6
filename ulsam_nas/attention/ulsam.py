"""Ultra-Lightweight Subspace Attention Module (Saini, Jha, Das, Mittal, Mohan: "ULSAM:
Ultra-Lightweight Subspace Attention Module for Compact Convolutional Neural Networks",
WACV 2020, arXiv:2006.15102).

Exactly the official ``ulsam.py`` (Nandan91/ULSAM): the m channels are split into g subspaces of
G = m/g channels; per subspace a depthwise 1×1 conv (bias) → BatchNorm (momentum 0.9) → ReLU →
3×3 max-pool (stride 1, padding 1) → 1×1 conv G→1 (bias) → BatchNorm (momentum 0.9) → ReLU →
softmax over the h·w positions gives one attention map, and the subspace's output is
``map · x + x``.

The official code loops over g ``SubSpace`` modules (``torch.chunk`` … ``torch.cat``); this
implementation computes all subspaces at once (a depthwise conv over all m channels, a grouped
1×1 conv with g groups, one BatchNorm over the g maps).  Parameters, running statistics, outputs
and gradients are identical to the loop (``tests/test_attention.py`` checks it against a loop
port with copied weights); it avoids the per-group Python loop, which dominates ULSAM's CPU time.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ulsam_nas.attention._common import check_positive_int, divisors
from ulsam_nas.attention.registry import AttentionSpec, register_attention
from ulsam_nas.cost.cost import Terms
from ulsam_nas.cost.primitives import batch_norm, conv2d, elementwise
from ulsam_nas.cost.symbolic import Num, derived, ratio
from ulsam_nas.errors import InvalidInput

BN_MOMENTUM = 0.9  # as in the official code (PyTorch semantics: 90% weight on the new batch)


@dataclass(frozen=True)
class ULSAMConfig:
    groups: int = 4

    def resolved(self, channels: int) -> ULSAMConfig:
        return self

    def validate(self, channels: int, height: int | None = None, width: int | None = None) -> None:
        check_positive_int("groups", self.groups)
        if channels % self.groups:
            allowed = ", ".join(map(str, divisors(channels)))
            raise InvalidInput(
                f"groups={self.groups} does not divide channels={channels}; allowed: {allowed}"
            )


class ULSAM(nn.Module):
    def __init__(self, channels: int, config: ULSAMConfig | None = None) -> None:
        super().__init__()
        config = config or ULSAMConfig()
        config.validate(channels)
        self.groups = config.groups
        self.depthwise = nn.Conv2d(channels, channels, 1, groups=channels)
        self.depthwise_bn = nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)
        self.pool = nn.MaxPool2d(3, stride=1, padding=1)
        self.pointwise = nn.Conv2d(channels, self.groups, 1, groups=self.groups)
        self.pointwise_bn = nn.BatchNorm2d(self.groups, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, m, h, w = x.shape
        maps = self.pool(self.relu(self.depthwise_bn(self.depthwise(x))))
        maps = self.relu(self.pointwise_bn(self.pointwise(maps)))  # (b, g, h, w)
        attention = F.softmax(maps.reshape(b, self.groups, 1, h * w), dim=-1).reshape(b, self.groups, 1, h, w)
        subspaces = x.reshape(b, self.groups, m // self.groups, h, w)
        return (attention * subspaces + subspaces).reshape(b, m, h, w)


def _subspace_width(m: Num, g: Num) -> Num:
    return derived("G", _per_group, [m, g], "m/g", ideal=ratio(m, g), exact=True)


def _per_group(m: int, g: int) -> int:
    return m // g


def exact_cost(m: Num, h: Num, w: Num, *, groups: Num) -> Terms:
    g, hw = groups, h * w
    per_group = _subspace_width(m, g)
    return Terms.total(
        [
            conv2d(1, m, 1, h, w, bias=True, groups=m),  # depthwise 1×1
            batch_norm(m, m * hw),
            elementwise("relu", m * hw),
            elementwise("max_pool", m * hw),
            conv2d(per_group, g, 1, h, w, bias=True, groups=g),  # G→1 in each of the g subspaces
            batch_norm(g, g * hw),
            elementwise("relu", g * hw),
            elementwise("softmax", g * hw),
            elementwise("mul", m * hw),
            elementwise("add", m * hw),
        ]
    )


def paper_cost(m: Num, h: Num, w: Num, *, groups: Num) -> Terms:
    # Paper: 2m params and 2m·hw FLOPs = the depthwise and pointwise conv weights; drops the
    # g + m biases and the BN parameters (2m + 2g).
    per_group = _subspace_width(m, groups)
    convs = conv2d(1, m, 1, h, w, bias=False) + conv2d(per_group, groups, 1, h, w, bias=False)
    return convs.without_ops()


SPEC = register_attention(
    AttentionSpec(
        key="ulsam",
        title="ULSAM",
        citation="Saini et al., ULSAM: Ultra-Lightweight Subspace Attention Module, WACV 2020",
        config_cls=ULSAMConfig,
        module_cls=ULSAM,
        exact_cost=exact_cost,
        paper_cost=paper_cost,
        symbols={"groups": "g"},
        uses_subspace=True,
        uses_conv1x1=True,
        sample_config=lambda rng, channels: {"groups": rng.choice(divisors(channels))},
        paper_note="drops the conv biases (m + g) and the BN parameters (2m + 2g)",
    )
)
