"""What verify traces: a model description that pickles to a counter's process, builds the real
module there, and yields its closed-form cost here."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ulsam_nas.attention import attention_cost, create_attention, get_attention, list_attention
from ulsam_nas.cost.cost import Cost

DEFAULT_SHAPE = (512, 14, 14)
MAX_CHANNELS = 256
MAX_SIDE = 28


@dataclass(frozen=True)
class Case:
    module: str
    channels: int
    height: int
    width: int
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.module

    def shape_dict(self) -> dict[str, int]:
        return {"channels": self.channels, "height": self.height, "width": self.width}

    def shape_text(self) -> str:
        return f"{self.channels}×{self.height}×{self.width}"

    def config_text(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config.items()) or "defaults"

    def input_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)

    def cost(self) -> Cost:
        return attention_cost(self.module, self.channels, self.height, self.width, **self.config)


def build_model(case: Case) -> nn.Module:
    return create_attention(case.module, case.channels, **case.config)


def attention_cases(modules: list[str] | None, samples: int, seed: int) -> list[Case]:
    """The paper's shape with default options, then ``samples`` random shapes and configs per
    module: odd and non-square maps, any channel count, every kind of option value."""
    rng = random.Random(seed)
    cases: list[Case] = []
    for name in modules or list_attention():
        spec = get_attention(name)
        cases.append(Case(name, *DEFAULT_SHAPE))
        for _ in range(samples):
            channels = rng.randint(2, MAX_CHANNELS)
            config = spec.sample_config(rng, channels)
            low = 2 if config.get("subsample") else 1
            cases.append(Case(name, channels, rng.randint(low, MAX_SIDE), rng.randint(low, MAX_SIDE), config))
    return cases
