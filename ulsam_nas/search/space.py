"""Search spaces: YAML files (data, not code) describing where attention may go.

A space lists a backbone and stem, the width multipliers, the candidate positions with their
allowed actions, the allowed group counts, the attention modules and the maximum number of
modules per network.  Every space contains the zero-module configuration (the plain backbone).
``enumerate_candidates`` lists every configuration with its exact cost, proposing at each
position only the group counts that divide the channels there.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    field_validator,
)

from ulsam_nas.attention import get_attention, list_attention
from ulsam_nas.attention._common import divisors
from ulsam_nas.backbones.network import backbone_table, network_cost
from ulsam_nas.backbones.plan import Placement, plan_text
from ulsam_nas.errors import InvalidInput


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Position(_Strict):
    index: int = Field(ge=0)
    actions: list[Literal["insert", "replace"]] = Field(default=["insert"], min_length=1)


class SearchSpace(_Strict):
    """The schema of a search_spaces/*.yaml file."""

    description: str = ""
    backbone: Literal["mobilenet_v1", "mobilenet_v2"]
    stem: Literal["imagenet", "small"] = "imagenet"
    width_mults: list[PositiveFloat] = Field(min_length=1)
    positions: list[Position] = Field(default_factory=list)
    groups: list[PositiveInt] = Field(default_factory=lambda: [1, 2, 4, 8, 16], min_length=1)
    modules: list[str] = Field(default_factory=lambda: ["ulsam"], min_length=1)
    max_modules: int = Field(default=1, ge=0)
    # The ULSAM paper's placement for this backbone, enqueued as a baseline (plan text).
    paper_plan: str = ""

    @field_validator("width_mults", "groups")
    @classmethod
    def _sorted_unique(cls, values: list[Any]) -> list[Any]:
        return sorted(set(values))

    @field_validator("modules")
    @classmethod
    def _known_modules(cls, modules: list[str]) -> list[str]:
        for module in modules:
            if module not in list_attention():
                raise ValueError(f"module {module!r} is unknown; allowed: {', '.join(list_attention())}")
        return modules

    @field_validator("positions")
    @classmethod
    def _distinct_positions(cls, positions: list[Position]) -> list[Position]:
        indices = [p.index for p in positions]
        if len(set(indices)) != len(indices):
            raise ValueError(f"positions repeat an index: {indices}")
        return sorted(positions, key=lambda p: p.index)


def one_line(error: ValidationError, source: str) -> str:
    """The first schema problem as one line naming the key, e.g. "unknown key 'foo'"."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        return f"{source}: unknown key {where!r}"
    if first["type"] == "missing":
        return f"{source}: missing key {where!r}"
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"{source}: {where}: {message} (got {first.get('input')!r})"


def read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InvalidInput(f"cannot read {path}: {error.strerror or error}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise InvalidInput(f"{path}: malformed YAML{where}: {problem}") from None


def load_space(path: str | Path) -> SearchSpace:
    path = Path(path)
    document = read_yaml(path)
    if not isinstance(document, dict):
        raise InvalidInput(f"{path}: expected a mapping of keys, got {type(document).__name__}")
    try:
        return SearchSpace.model_validate(document)
    except ValidationError as error:
        raise InvalidInput(one_line(error, str(path))) from None


@dataclass(frozen=True)
class Candidate:
    """One configuration of a space with its exact cost."""

    width_mult: float
    plan: str
    macs: int
    params: int
    modules: int

    @property
    def key(self) -> str:
        return self.key_of(self.width_mult, self.plan)

    @staticmethod
    def key_of(width_mult: float, plan: str) -> str:
        """The value of the study's ``candidate`` parameter: "α|plan"."""
        return f"{width_mult:g}|{plan}"


def position_options(
    space: SearchSpace, width_mult: float, resolution: int, num_classes: int, in_channels: int
) -> dict[int, list[Placement]]:
    """Every placement the space allows at each position, at this width (valid groups only)."""
    table = backbone_table(space.backbone, width_mult, resolution, num_classes, in_channels, space.stem)
    replaceable = set(table.replaceable())
    options: dict[int, list[Placement]] = {}
    for position in space.positions:
        if position.index > table.last_index:
            raise InvalidInput(
                f"position {position.index} is out of range for {space.backbone}; "
                f"allowed: 0..{table.last_index}"
            )
        channels = table.layers[position.index].spec.out_channels
        found = []
        for action in position.actions:
            if action == "replace" and position.index not in replaceable:
                continue
            for module in space.modules:
                spec = get_attention(module)
                if "groups" in spec.option_names():
                    for g in space.groups:
                        if g in divisors(channels):
                            found.append(Placement(action, position.index, module, groups=g))
                else:
                    found.append(Placement(action, position.index, module))
        options[position.index] = found
    return options


def enumerate_candidates(
    space: SearchSpace, resolution: int, num_classes: int, in_channels: int, convention: str = "exact"
) -> list[Candidate]:
    """All configurations of the space (plain backbones first), each with its closed-form cost.
    A group count that divides the channels of no position at any width is invalid input."""
    candidates = []
    usable: set[int] = set()
    channels: set[int] = set()
    for width in space.width_mults:
        options = position_options(space, width, resolution, num_classes, in_channels)
        usable |= {p.config["groups"] for found in options.values() for p in found if "groups" in p.config}
        table = backbone_table(space.backbone, width, resolution, num_classes, in_channels, space.stem)
        channels |= {table.layers[p.index].spec.out_channels for p in space.positions}
        for count in range(min(space.max_modules, len(options)) + 1):
            for positions in itertools.combinations(sorted(options), count):
                for chosen in itertools.product(*(options[p] for p in positions)):
                    plan = plan_text(list(chosen))
                    cost = network_cost(
                        space.backbone,
                        width,
                        list(chosen),
                        resolution,
                        num_classes,
                        in_channels,
                        space.stem,
                        convention,
                    )
                    candidates.append(Candidate(width, plan, cost.macs, cost.params, count))
    grouped = any("groups" in get_attention(m).option_names() for m in space.modules)
    unusable = sorted(set(space.groups) - usable) if grouped and space.positions else []
    if unusable:
        raise InvalidInput(
            f"groups {unusable[0]} divides the channels of no position at any width "
            f"(channels there: {', '.join(str(c) for c in sorted(channels))}); use divisors of them"
        )
    return candidates
