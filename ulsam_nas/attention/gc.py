"""Global context block (Cao, Xu, Lin, Wei, Hu: "GCNet: Non-local Networks Meet
Squeeze-Excitation Networks and Beyond", ICCV Workshops 2019, arXiv:1904.11492).

Follows the official ``ContextBlock`` (xvjiarui/GCNet, ``mmdet/ops/gcb/context_block.py``) with
its published setting, attention pooling and channel-add fusion: 1×1 conv m→1 with bias →
softmax over the h·w positions → context = x weighted by it (a matmul) → 1×1 conv m→p with bias
→ LayerNorm over (p, 1, 1) → ReLU → 1×1 conv p→m with bias, added to every position of x.
p = ⌊m · ratio⌋, ratio = 1/16.  The last conv starts at zero, as in the official code, so a new
block is the identity.

Divergences, stated: the official file imports mmcv for two initialisers; this one uses
PyTorch's (Kaiming fan-in for the mask conv, zeros for the last conv).  Only the published
pooling and fusion are offered (the official ``avg`` pooling and ``channel_mul`` fusion are
not).  timm's ``GlobalContext`` (key ``gc`` there) differs: channel-multiply fusion, ratio 1/8;
the key ``gc`` here is the official block.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ulsam_nas.attention._common import is_finite_number, number_text
from ulsam_nas.attention.registry import AttentionSpec, register_attention
from ulsam_nas.cost.cost import Terms
from ulsam_nas.cost.primitives import conv2d, elementwise, matmul
from ulsam_nas.cost.symbolic import Num, Poly, derived
from ulsam_nas.errors import InvalidInput

DEFAULT_RATIO = 1 / 16


def planes(channels: int, ratio: float) -> int:
    """The official ``int(inplanes * ratio)``."""
    return int(channels * ratio)


@dataclass(frozen=True)
class GCConfig:
    ratio: float = DEFAULT_RATIO

    def resolved(self, channels: int) -> GCConfig:
        return self

    def validate(self, channels: int, height: int | None = None, width: int | None = None) -> None:
        r = self.ratio
        if not is_finite_number(r) or not 0 < r <= 1:
            raise InvalidInput(f"ratio={r!r} is invalid; allowed: a number in (0, 1], e.g. 1/16")
        if planes(channels, r) < 1:
            raise InvalidInput(
                f"ratio={number_text(r)} leaves ⌊m · ratio⌋ = 0 planes at channels={channels}; "
                f"allowed: ratio ≥ 1/{channels}"
            )


class GlobalContext(nn.Module):
    def __init__(self, channels: int, config: GCConfig | None = None) -> None:
        super().__init__()
        config = config or GCConfig()
        config.validate(channels)
        p = planes(channels, config.ratio)
        self.conv_mask = nn.Conv2d(channels, 1, 1)
        last = nn.Conv2d(p, channels, 1)
        self.transform = nn.Sequential(nn.Conv2d(channels, p, 1), nn.LayerNorm([p, 1, 1]), nn.ReLU(), last)
        nn.init.kaiming_normal_(self.conv_mask.weight, mode="fan_in", nonlinearity="relu")
        for tensor in (self.conv_mask.bias, last.weight, last.bias):
            assert tensor is not None
            nn.init.zeros_(tensor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, m, h, w = x.shape
        weights = F.softmax(self.conv_mask(x).view(b, 1, h * w), dim=2)  # (B, 1, hw)
        context = torch.matmul(x.view(b, 1, m, h * w), weights[..., None])  # (B, 1, m, 1)
        return x + self.transform(context.view(b, m, 1, 1))


def _planes(ratio: float) -> Any:
    return lambda m: planes(m, ratio)


def planes_width(m: Num, ratio: float) -> Num:
    text = number_text(ratio)
    definition = f"⌊m/{text[2:]}⌋" if text.startswith("1/") else f"⌊m · {text}⌋"
    simple = "/" in text  # a fraction the paper-style form can print
    ideal = m * Fraction(ratio) if simple and isinstance(m, Poly) else None
    return derived("p", _planes(ratio), [m], definition, ideal=ideal)


def exact_cost(m: Num, h: Num, w: Num, *, ratio: float) -> Terms:
    p, hw = planes_width(m, ratio), h * w
    return (
        conv2d(m, 1, 1, h, w, bias=True)
        + elementwise("softmax", hw)
        + matmul(m, hw, 1)
        + conv2d(m, p, 1, 1, 1, bias=True)
        + Terms.of({("params", "ln"): 2 * p, ("ops", "layer_norm"): p})
        + elementwise("relu", p)
        + conv2d(p, m, 1, 1, 1, bias=True)
        + elementwise("add", m * hw)
    )


def paper_cost(m: Num, h: Num, w: Num, *, ratio: float) -> Terms:
    # The ULSAM paper's way: conv weights and MACs and the attention matmul (drops biases, LN).
    p, hw = planes_width(m, ratio), h * w
    kept = conv2d(m, 1, 1, h, w, bias=False) + matmul(m, hw, 1)
    return (kept + conv2d(m, p, 1, 1, 1, bias=False) + conv2d(p, m, 1, 1, 1, bias=False)).without_ops()


def sample_config(rng: random.Random, channels: int) -> dict[str, Any]:
    """A ratio from the paper's ablation (1/4, 1/8, 1/16) or 1/n for any n up to m."""
    choices = [r for r in (1 / 4, 1 / 8, 1 / 16) if planes(channels, r) >= 1]
    if choices and rng.random() < 0.6:
        return {"ratio": rng.choice(choices)}
    return {"ratio": 1 / rng.randint(1, channels)}


SPEC = register_attention(
    AttentionSpec(
        key="gc",
        title="GC",
        citation="Cao et al., GCNet: Non-local Networks Meet Squeeze-Excitation Networks, ICCVW 2019",
        config_cls=GCConfig,
        module_cls=GlobalContext,
        exact_cost=exact_cost,
        paper_cost=paper_cost,
        uses_mlp=True,
        uses_conv1x1=True,
        sample_config=sample_config,
        paper_note="drops the conv biases (1 + p + m params) and the LayerNorm (2p)",
    )
)
