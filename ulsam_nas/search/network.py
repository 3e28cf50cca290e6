"""The network a study searches over, at each of its widths: a built-in backbone (``backbone:``
in the space) or the user's own (``model: package.module:factory`` or ``path/to/file.py:factory``
with ``model_args``, the width being one factory argument the space names).

Either way the study sees a :class:`ulsam_nas.networks.Network` per width (positions, exact
costs, plans) and builds candidates through ``build``; a brought network is traced once per
width (cached) and built afresh by its factory for every training run, so a seed initialises
all of it, not only the modules a plan adds.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ulsam_nas.analysis import Analysis, analyze
from ulsam_nas.analysis.build import build as build_with
from ulsam_nas.analysis.source import load_model
from ulsam_nas.backbones.network import BackboneShape
from ulsam_nas.errors import InvalidInput
from ulsam_nas.networks import Network
from ulsam_nas.networks.plan import PlanLike, parse_plan
from ulsam_nas.search.space import SearchSpace


@dataclass(frozen=True)
class BuiltinNetwork:
    """A built-in backbone at the data's shape (the study's ``network`` attribute as it was)."""

    backbone: str
    resolution: int
    num_classes: int
    in_channels: int
    stem: str = "imagenet"

    @property
    def name(self) -> str:
        return self.backbone

    def shape(self, width: float) -> BackboneShape:
        return BackboneShape(
            self.backbone, width, self.resolution, self.num_classes, self.in_channels, self.stem
        )

    def at(self, width: float) -> Network:
        return self.shape(width).table()

    def build(self, width: float, plan: PlanLike, plain_first: bool = False) -> nn.Module:
        return self.shape(width).table().build(plan, plain_first=plain_first)

    def label(self, width: float, plan: str) -> str:
        """A plan as a reader knows it (a built-in's plans name layer indices already)."""
        return plan

    def width_label(self, width: float) -> str:
        """A width as a reader knows it: a built-in's width multiplier α."""
        return width_label_of(self.attrs(), width)

    def identity(self, widths: Sequence[float]) -> dict[str, Any] | None:
        """What a study must find unchanged on resuming, beyond its files: nothing for a built-in
        (its tables are the tool's)."""
        return None

    def attrs(self) -> dict[str, Any]:
        """What the study stores as its ``network`` attribute."""
        return {
            "resolution": self.resolution,
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
            "stem": self.stem,
        }

    def code(self, width: float, plan: str) -> str:
        """Python that builds a candidate (``plan`` as stored)."""
        extra = "".join(f", {k}={v!r}" for k, v in self.attrs().items())
        return f"ulsam_nas.create_network({self.backbone!r}, width_mult={width!r}, plan={plan!r}{extra})"


@dataclass(frozen=True)
class BroughtNetwork:
    """The user's network: ``factory(**model_args, width_arg=width)``, traced at the data's
    input size."""

    model: str
    model_args_json: str  # the factory's fixed arguments, as JSON (hashable: traces are cached)
    width_arg: str | None
    resolution: int
    num_classes: int
    in_channels: int
    classes_arg: str | None = None
    channels_arg: str | None = None
    whole_widths: bool = True  # every width of the space is a whole number: passed as ints

    @property
    def name(self) -> str:
        return self.model

    def arguments(self, width: float) -> dict[str, Any]:
        """The factory's arguments at ``width`` (widths that are all whole numbers are passed as
        ints: channel counts; otherwise every width is a float: multipliers)."""
        found = json.loads(self.model_args_json)
        if self.width_arg is not None:
            found[self.width_arg] = int(width) if self.whole_widths else float(width)
        if self.classes_arg is not None:
            found[self.classes_arg] = self.num_classes
        if self.channels_arg is not None:
            found[self.channels_arg] = self.in_channels
        return found

    def at(self, width: float) -> Analysis:
        return _traced(self, width)

    def build(self, width: float, plan: PlanLike, plain_first: bool = True) -> nn.Module:
        """The factory's model, then the plan's modules: always plain first (its layers are the
        factory's, drawn before any module)."""
        analysis = self.at(width)
        placements = analysis.resolve(_placements(plan))
        model = load_model(self.model, self.arguments(width))
        return build_with(model, placements, analysis.positions)

    def label(self, width: float, plan: str) -> str:
        """A plan with module paths for position numbers (``insert@layer3.1:ulsam:groups=4``)."""
        return self.at(width).plan_text(_placements(plan))

    def width_label(self, width: float) -> str:
        """A width as a reader knows it: the factory argument it is passed as (``width=12``)."""
        return width_label_of(self.attrs(), width)

    def identity(self, widths: Sequence[float]) -> dict[str, Any]:
        """The model as this run traces it: its positions and plain cost at each width.  A study
        stores plans by position number, so a model file edited between runs (or another worker's
        copy) that moves or re-costs positions must not resume it."""
        found = {}
        for width in widths:
            network = self.at(width)
            total = network.total("exact")
            found[f"{width:g}"] = {
                "positions": [network.where(i) for i in range(network.last_index + 1)],
                "macs": total.macs,
                "params": total.params,
            }
        return found

    def attrs(self) -> dict[str, Any]:
        return {
            "resolution": self.resolution,
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
            "model": self.model,
            "model_args": json.loads(self.model_args_json),
            "width_arg": self.width_arg,
            "classes_arg": self.classes_arg,
            "channels_arg": self.channels_arg,
            "whole_widths": self.whole_widths,
        }

    def code(self, width: float, plan: str) -> str:
        """Python that builds a candidate; ``plan`` with module paths (the trial's ``where``)."""
        size = (self.in_channels, self.resolution, self.resolution)
        return (
            f"ulsam_nas.analyze(ulsam_nas.load_model({self.model!r}, {self.arguments(width)!r}), "
            f"{size}).build({plan!r})"
        )


StudyNetwork = BuiltinNetwork | BroughtNetwork


def _placements(plan: PlanLike) -> PlanLike:
    """A study's plans are written with position numbers (``insert@5``): parsed by the index
    grammar, so that a Sequential child named ``5`` never takes the number's place."""
    return parse_plan(plan) if isinstance(plan, str) else plan


@functools.lru_cache(maxsize=1024)  # a space has at most 1000 widths: every one stays traced
def _traced(network: BroughtNetwork, width: float) -> Analysis:
    # Building the model to trace it draws random numbers: fork the generator, so a candidate
    # built right after (under its training seed) starts the same whether or not this was cached.
    with torch.random.fork_rng(devices=[]):
        return _trace(network, width)


def _trace(network: BroughtNetwork, width: float) -> Analysis:
    model = load_model(network.model, network.arguments(width))
    size = (network.in_channels, network.resolution, network.resolution)
    with torch.no_grad():
        model.eval()
        try:
            output = model(torch.zeros(1, *size))
        except Exception as error:
            raise InvalidInput(
                f"model {network.model!r} at {network.width_arg or 'width'}={width:g} fails on a "
                f"1×{'×'.join(map(str, size))} input (the data's shape): {type(error).__name__}: "
                f"{str(error).splitlines()[0] if str(error) else ''}"
            ) from None
    if not isinstance(output, torch.Tensor) or tuple(output.shape) != (1, network.num_classes):
        got = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise InvalidInput(
            f"model {network.model!r} returns {got} for one image; the data has "
            f"{network.num_classes} classes: allowed: logits of shape (1, {network.num_classes}) "
            "(name the factory's class-count argument as classes_arg)"
        )
    analysis = analyze(model, size)
    analysis.name = network.model
    return analysis


def _json(arguments: dict[str, Any]) -> str:
    return json.dumps(arguments, sort_keys=True)


def study_network(space: SearchSpace, resolution: int, num_classes: int, in_channels: int) -> StudyNetwork:
    """The network a space names, at the data's shape."""
    if space.model is not None:
        return BroughtNetwork(
            space.model,
            _json(space.model_args),
            space.width_arg,
            resolution,
            num_classes,
            in_channels,
            space.classes_arg,
            space.channels_arg,
            all(float(w).is_integer() for w in space.width_mults),
        )
    assert space.backbone is not None  # the schema requires one of backbone and model
    return BuiltinNetwork(space.backbone, resolution, num_classes, in_channels, space.stem)


def width_label_of(attrs: dict[str, Any], width: float) -> str:
    """How a width reads, from a study's ``network`` attribute: a built-in's ``α 0.5``, a brought
    network's factory argument ``width=12``."""
    if "model" in attrs:
        return f"{attrs.get('width_arg') or 'width'}={width:g}"
    return f"α {width:g}"


def network_of_attrs(backbone: str, attrs: dict[str, Any]) -> StudyNetwork:
    """A stored study's network from its ``backbone`` and ``network`` attributes."""
    if "model" in attrs:
        return BroughtNetwork(
            attrs["model"],
            _json(attrs.get("model_args", {})),
            attrs.get("width_arg"),
            attrs["resolution"],
            attrs["num_classes"],
            attrs["in_channels"],
            attrs.get("classes_arg"),
            attrs.get("channels_arg"),
            attrs.get("whole_widths", True),
        )
    return BuiltinNetwork(
        backbone,
        attrs.get("resolution", 224),
        attrs.get("num_classes", 1000),
        attrs.get("in_channels", 3),
        attrs.get("stem", "imagenet"),
    )
