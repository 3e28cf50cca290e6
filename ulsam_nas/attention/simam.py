"""SimAM, a parameter-free attention module (Yang, Zhang, Li, Xie: "SimAM: A Simple,
Parameter-Free Attention Module for Convolutional Neural Networks", ICML 2021).

Follows the official ``simam_module`` (ZjjConan/SimAM, ``networks/attentions/simam_module.py``):
per channel, d = (x − μ)² with μ the mean over the h×w map, energy
e = d / (4·(Σd / n + λ)) + 0.5 with n = h·w − 1 and λ = 1e-4, output x · sigmoid(e).  No
parameters and no MACs: every operation is element-wise or a reduction over h×w.

Divergence, stated: on a 1×1 map the official code divides by n = 0 and returns NaN.  Here
n = max(h·w − 1, 1), so a 1×1 map (where d = 0) gives e = 0.5 and x · sigmoid(0.5); every larger
map is computed exactly as the official code does.  The official ResNets put the module inside
the residual branch before its last BN; place it with a plan where you want it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ulsam_nas.attention._common import is_finite_number
from ulsam_nas.attention.registry import AttentionSpec, register_attention
from ulsam_nas.cost.cost import Terms
from ulsam_nas.cost.primitives import elementwise
from ulsam_nas.cost.symbolic import Num
from ulsam_nas.errors import InvalidInput


@dataclass(frozen=True)
class SimAMConfig:
    e_lambda: float = 1e-4

    def resolved(self, channels: int) -> SimAMConfig:
        return self

    def validate(self, channels: int, height: int | None = None, width: int | None = None) -> None:
        value = self.e_lambda
        if not is_finite_number(value) or value <= 0:
            raise InvalidInput(f"e_lambda={value!r} is invalid; allowed: a positive finite number")


class SimAM(nn.Module):
    def __init__(self, channels: int, config: SimAMConfig | None = None) -> None:
        super().__init__()
        config = config or SimAMConfig()
        config.validate(channels)
        self.e_lambda = float(config.e_lambda)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = max(x.shape[-2] * x.shape[-1] - 1, 1)  # the official n = h·w − 1 is 0 on a 1×1 map
        deviation = (x - x.mean(dim=(2, 3), keepdim=True)).pow(2)
        energy = deviation / (4 * (deviation.sum(dim=(2, 3), keepdim=True) / n + self.e_lambda)) + 0.5
        return x * torch.sigmoid(energy)

    def extra_repr(self) -> str:
        return f"e_lambda={self.e_lambda}"


def exact_cost(m: Num, h: Num, w: Num, *, e_lambda: float) -> Terms:
    mhw = m * h * w
    return (
        elementwise("spatial_mean", mhw)  # μ
        + elementwise("sub", mhw)  # x − μ
        + elementwise("square", mhw)
        + elementwise("spatial_sum", mhw)  # Σd
        + elementwise("div", m)  # Σd / n
        + elementwise("add", m)  # + λ
        + elementwise("mul", m)  # 4 · (…)
        + elementwise("div", mhw)  # d / (…)
        + elementwise("add", mhw)  # + 0.5
        + elementwise("sigmoid", mhw)
        + elementwise("mul", mhw)
    )


def paper_cost(m: Num, h: Num, w: Num, *, e_lambda: float) -> Terms:
    # No conv or linear layer: nothing to count in the ULSAM paper's way (0 params, 0 MACs).
    return Terms()


def sample_config(rng: random.Random, channels: int) -> dict[str, Any]:
    return {} if rng.random() < 0.5 else {"e_lambda": rng.choice([1e-4, 1e-3, 0.1, 1.0])}


SPEC = register_attention(
    AttentionSpec(
        key="simam",
        title="SimAM",
        citation="Yang et al., SimAM: A Simple, Parameter-Free Attention Module for CNNs, ICML 2021",
        config_cls=SimAMConfig,
        module_cls=SimAM,
        exact_cost=exact_cost,
        paper_cost=paper_cost,
        sample_config=sample_config,
        paper_note="has no conv or linear layer: 0 params and 0 MACs (its element-wise work is in ops)",
    )
)
