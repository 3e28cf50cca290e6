"""What verify traces: a model description that pickles to a counter's process, builds the real
module there, and yields its closed-form cost here."""

from __future__ import annotations

import dataclasses
import functools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ulsam_nas.analysis.analysis import Analysis, analyze
from ulsam_nas.attention import attention_cost, create_attention, get_attention, list_attention
from ulsam_nas.attention._common import number_text
from ulsam_nas.backbones.network import BACKBONES, BackboneShape, create_network, network_cost, resolve_plan
from ulsam_nas.cost.cost import Cost
from ulsam_nas.errors import InvalidInput
from ulsam_nas.networks.plan import REMOVE, Placement, plan_text

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
        return ", ".join(f"{k}={number_text(v)}" for k, v in self.config.items()) or "defaults"

    def input_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)

    def cost(self) -> Cost:
        return attention_cost(self.module, self.channels, self.height, self.width, **self.config)


@dataclass(frozen=True)
class NetworkCase:
    """A MobileNet with a placement plan (``verify --backbones``)."""

    backbone: str
    width_mult: float
    plan: str
    resolution: int
    num_classes: int = 1000
    in_channels: int = 3
    stem: str = "imagenet"

    @property
    def label(self) -> str:
        return f"{self.backbone}+plan"

    @property
    def config(self) -> dict[str, Any]:
        return {
            "width_mult": self.width_mult,
            "plan": self.plan,
            "stem": self.stem,
            "num_classes": self.num_classes,
        }

    def shape_dict(self) -> dict[str, int]:
        return {"channels": self.in_channels, "height": self.resolution, "width": self.resolution}

    def shape_text(self) -> str:
        return f"{self.in_channels}×{self.resolution}×{self.resolution}"

    def input_shape(self) -> tuple[int, int, int]:
        return (self.in_channels, self.resolution, self.resolution)

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments of ``create_network`` and ``network_cost`` (the fields)."""
        return dataclasses.asdict(self)

    def cost(self) -> Cost:
        return network_cost(**self.arguments())


@dataclass(frozen=True)
class PlanCase:
    """Any model with a path plan (``cost --model --trace``, the zoo checks): ``factory`` is a
    module-level callable (or a picklable one) that a counter's process calls to make the model,
    which is analyzed at ``size`` there once and built with the plan."""

    factory: Callable[[], nn.Module]
    size: tuple[int, int, int]
    plan: str

    @property
    def label(self) -> str:
        return "model+plan"

    @property
    def config(self) -> dict[str, Any]:
        return {"plan": self.plan}

    def shape_dict(self) -> dict[str, int]:
        return dict(zip(("channels", "height", "width"), self.size, strict=True))

    def input_shape(self) -> tuple[int, int, int]:
        return self.size

    def analysis(self) -> Analysis:
        return _analysis_of(self.factory, self.size)

    def cost(self) -> Cost:
        return self.analysis().cost(self.plan)


@functools.lru_cache(maxsize=8)  # a process checks many plans of one model: it is traced once
def _analysis_of(factory: Callable[[], nn.Module], size: tuple[int, int, int]) -> Analysis:
    return analyze(factory(), size)


AnyCase = Case | NetworkCase | PlanCase


def build_model(case: AnyCase) -> nn.Module:
    if isinstance(case, NetworkCase):
        return create_network(**case.arguments())
    if isinstance(case, PlanCase):
        return case.analysis().build(case.plan)
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


BACKBONE_WIDTHS = (0.25, 0.35, 0.5, 0.75, 1.0, 1.3)


def random_plan(
    rng: random.Random, backbone: str, width_mult: float, resolution: int, stem: str, max_modules: int = 4
) -> str:
    """A valid random plan: up to ``max_modules`` placements of any registered module; at blocks
    with their own SE the placement may swap it (or remove it)."""
    table = BackboneShape(backbone, width_mult, resolution, stem=stem).table()
    replaceable, swappable = set(table.replaceable()), set(table.swappable())
    while True:
        indices = rng.sample(range(table.last_index + 1), rng.randint(0, max_modules))
        placements = []
        for index in indices:
            actions = ["insert"] + ["replace"] * (index in replaceable) + ["swap"] * (index in swappable)
            action = rng.choice(actions)
            if action == "swap" and rng.random() < 0.2:
                placements.append(Placement("swap", index, REMOVE))
                continue
            module = "ulsam" if rng.random() < 0.6 else rng.choice(list_attention())
            channels = table.layers[index].spec.module_channels(action)
            placements.append(
                Placement(action, index, module, **get_attention(module).sample_config(rng, channels))
            )
        try:
            return plan_text(resolve_plan(table, placements))
        except InvalidInput:
            continue  # e.g. Non-local subsampling on a 1×1 map: draw again


def network_cases(samples: int, seed: int) -> list[NetworkCase]:
    """Random (backbone, α, resolution <= 128, stem, plan) combinations."""
    rng = random.Random(seed)
    cases = []
    for _ in range(samples):
        backbone = rng.choice(list(BACKBONES))
        width = rng.choice(BACKBONE_WIDTHS)
        stem = rng.choice(["imagenet", "small"])
        resolution = rng.choice([32, 33, 48, 64, 96, 128]) if stem == "imagenet" else rng.choice([28, 32, 40])
        cases.append(
            NetworkCase(
                backbone,
                width,
                random_plan(rng, backbone, width, resolution, stem),
                resolution,
                num_classes=rng.choice([10, 100, 1000]),
                in_channels=rng.choice([1, 3]),
                stem=stem,
            )
        )
    return cases
