"""Efficient Channel Attention (Wang, Wu, Zhu, Li, Zuo, Hu: "ECA-Net: Efficient Channel
Attention for Deep Convolutional Neural Networks", CVPR 2020, arXiv:1910.03151).

Follows the official layer (BangguWu/ECANet, ``models/eca_module.py``): global average pool →
1-D convolution across the m channels (1 in, 1 out, kernel k, zero padding (k−1)/2, no bias) →
sigmoid → channel-wise scale.  Parameters k; MACs k·m.

Divergence, stated: the official layer takes k as an argument (default 3) and never computes
the paper's adaptive kernel.  Here ``kernel_size`` defaults to the paper's
ψ(m) = |log2(m)/γ + b/γ| rounded to the nearest odd number (γ = 2, b = 1; a tie, at an even
integer, goes to the larger odd number, as the authors' snippet ``t = int(|log2(m) + b| / γ)``,
``k = t if t odd else t + 1`` computes it).  timm's ``EcaModule`` computes the same and then
raises k to at least 3; this tool does not (k = 1 for m < 8).  The official checkpoints set k by
hand: MobileNetV2 k = 1 below 96 channels, ResNet-50 k = 3, 5, 5, 7 per stage — pass
``kernel_size`` to reproduce them.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ulsam_nas.attention._common import check_positive_int
from ulsam_nas.attention.registry import AttentionSpec, register_attention
from ulsam_nas.cost.cost import Terms
from ulsam_nas.cost.primitives import conv2d, elementwise
from ulsam_nas.cost.symbolic import Num
from ulsam_nas.errors import InvalidInput

GAMMA, B = 2, 1


def adaptive_kernel(channels: int) -> int:
    """The paper's ψ(m): |log2(m)/γ + b/γ| to the nearest odd number, ties to the larger."""
    t = int(abs((math.log2(channels) + B) / GAMMA))
    return t if t % 2 else t + 1


@dataclass(frozen=True)
class ECAConfig:
    kernel_size: int | None = None  # None: the paper's adaptive kernel for the channel count

    def resolved(self, channels: int) -> ECAConfig:
        return self if self.kernel_size is not None else ECAConfig(adaptive_kernel(channels))

    def validate(self, channels: int, height: int | None = None, width: int | None = None) -> None:
        if self.kernel_size is None:
            return
        check_positive_int("kernel_size", self.kernel_size)
        if self.kernel_size % 2 == 0:
            raise InvalidInput(f"kernel_size={self.kernel_size} is even; allowed: an odd positive integer")


class ECA(nn.Module):
    def __init__(self, channels: int, config: ECAConfig | None = None) -> None:
        super().__init__()
        config = (config or ECAConfig()).resolved(channels)
        config.validate(channels)
        k = config.kernel_size
        assert k is not None
        self.conv = nn.Conv1d(1, 1, k, padding=(k - 1) // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.adaptive_avg_pool2d(x, 1).flatten(1)[:, None, :]  # (B, 1, m): channels as a sequence
        scale = torch.sigmoid(self.conv(pooled))[:, 0, :, None, None]
        return x * scale


def exact_cost(m: Num, h: Num, w: Num, *, kernel_size: Num) -> Terms:
    return (
        elementwise("global_avg_pool", m * h * w)
        + conv2d(1, 1, kernel_size, m, 1, bias=False, kernel_w=1)  # a 1-D conv: k taps at m outputs
        + elementwise("sigmoid", m)
        + elementwise("mul", m * h * w)
    )


def paper_cost(m: Num, h: Num, w: Num, *, kernel_size: Num) -> Terms:
    # The ULSAM paper's way: weights and MACs of the conv only (it has no bias or BN to drop).
    return conv2d(1, 1, kernel_size, m, 1, bias=False, kernel_w=1).without_ops()


def sample_config(rng: random.Random, channels: int) -> dict[str, Any]:
    """Half the time the adaptive default, else an odd kernel up to 9 (possibly wider than m)."""
    return {} if rng.random() < 0.5 else {"kernel_size": rng.choice([1, 3, 5, 7, 9])}


SPEC = register_attention(
    AttentionSpec(
        key="eca",
        title="ECA",
        citation="Wang et al., ECA-Net: Efficient Channel Attention for Deep CNNs, CVPR 2020",
        config_cls=ECAConfig,
        module_cls=ECA,
        exact_cost=exact_cost,
        paper_cost=paper_cost,
        symbols={"kernel_size": "k"},
        sample_config=sample_config,
        paper_note="has nothing to drop: its only layer is a bias-free 1-D conv (k params, k·m MACs)",
    )
)
