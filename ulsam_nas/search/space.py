"""Search spaces: YAML files (data, not code) describing where attention may go.

A space lists a backbone and stem (or a network the user brings: ``model``, its arguments and the
factory argument the widths are passed as), the width multipliers (a list, or a range ``{from, to,
step}``), the candidate positions with their allowed actions, the allowed group counts, the
attention modules and the maximum number of modules per network.  Every space contains the
zero-module configuration (the plain backbone).  ``parameters.ParameterSpace`` turns a space into
the sampler's parameters and costs its configurations.
"""

from __future__ import annotations

import json
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
    model_validator,
)

from ulsam_nas.attention import list_attention
from ulsam_nas.attention.registry import canonical_key
from ulsam_nas.errors import InvalidInput


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Position(_Strict):
    """A layer index (a brought network: a position number, or a module ``path`` or path pattern
    such as ``layer*.1``) and what may happen there besides nothing: ``insert`` a module after
    the layer, ``replace`` the layer, ``swap`` the block's own attention (MobileNetV3's SE) for a
    module, or ``remove`` that attention."""

    index: int | None = Field(default=None, ge=0)
    path: str | None = Field(default=None, min_length=1)
    actions: list[Literal["insert", "replace", "swap", "remove"]] = Field(default=["insert"], min_length=1)

    @model_validator(mode="after")
    def _index_or_path(self) -> Position:
        if (self.index is None) == (self.path is None):
            raise ValueError("a position needs exactly one of index and path")
        return self


class SearchSpace(_Strict):
    """The schema of a search_spaces/*.yaml file."""

    description: str = ""
    backbone: (
        Literal["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "resnet18"] | None
    ) = None
    stem: Literal["imagenet", "small"] = "imagenet"
    # A brought network instead of a backbone: ``package.module:factory`` or ``file.py:factory``,
    # called with model_args and, where width_arg names one, the width as that argument.
    model: str | None = Field(default=None, min_length=3)
    model_args: dict[str, Any] = Field(default_factory=dict)
    width_arg: str | None = Field(default=None, min_length=1)
    # The factory arguments that receive the data's class count and input channels (without
    # them the model must fit the data as model_args build it).
    classes_arg: str | None = Field(default=None, min_length=1)
    channels_arg: str | None = Field(default=None, min_length=1)
    width_mults: list[PositiveFloat] = Field(min_length=1)
    positions: list[Position] = Field(default_factory=list)
    groups: list[PositiveInt] = Field(default_factory=lambda: [1, 2, 4, 8, 16], min_length=1)
    modules: list[str] = Field(default_factory=lambda: ["ulsam"], min_length=1)
    max_modules: int = Field(default=1, ge=0)
    # The ULSAM paper's placement for this backbone, enqueued as a baseline (plan text).
    paper_plan: str = ""

    @field_validator("model_args")
    @classmethod
    def _plain_data(cls, arguments: dict[str, Any]) -> dict[str, Any]:
        """Stored with the study as JSON: numbers, strings, booleans, lists and mappings."""
        for key, value in arguments.items():
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                raise ValueError(
                    f"model_args: {key!r} is a {type(value).__name__}; allowed: numbers, strings, "
                    "booleans, null, lists and mappings of them"
                ) from None
        return arguments

    @field_validator("positions")
    @classmethod
    def _distinct_indices(cls, positions: list[Position]) -> list[Position]:
        indices = [p.index for p in positions if p.index is not None]
        if len(set(indices)) != len(indices):
            raise ValueError(f"positions repeat an index: {indices}")
        return positions

    @field_validator("width_mults", mode="before")
    @classmethod
    def _width_range(cls, value: Any) -> Any:
        """``{from: 0.25, to: 0.5, step: 0.03125}`` lists the widths from, to (inclusive), by step."""
        if not isinstance(value, dict):
            return value
        unknown = sorted(set(value) - {"from", "to", "step"})
        if unknown or not all(isinstance(value.get(k), (int, float)) for k in ("from", "to", "step")):
            raise ValueError("a width range needs numbers from, to and step (and nothing else)")
        start, stop, step = float(value["from"]), float(value["to"]), float(value["step"])
        if step <= 0 or stop < start:
            raise ValueError("a width range needs step > 0 and to >= from")
        count = round((stop - start) / step) + 1
        if count > 1000:
            raise ValueError(f"a width range of {count} widths is too long; allowed: up to 1000")
        return [round(start + i * step, 10) for i in range(count) if start + i * step <= stop + 1e-9]

    @field_validator("width_mults", "groups")
    @classmethod
    def _sorted_unique(cls, values: list[Any]) -> list[Any]:
        return sorted(set(values))

    @field_validator("modules")
    @classmethod
    def _known_modules(cls, modules: list[str]) -> list[str]:
        """Registry keys (timm's aliases such as ``coord`` accepted), duplicates dropped."""
        keys = [canonical_key(module) for module in modules]
        for module, key in zip(modules, keys, strict=True):
            if key not in list_attention():
                raise ValueError(f"module {module!r} is unknown; allowed: {', '.join(list_attention())}")
        return list(dict.fromkeys(keys))

    @model_validator(mode="after")
    def _one_network(self) -> SearchSpace:
        if self.backbone is None and self.model is None:
            raise ValueError("missing key 'backbone' (or 'model': a network you bring)")
        if self.backbone is not None and self.model is not None:
            raise ValueError("a space names one network: backbone or model, not both")
        if self.model is None:
            for key in ("model_args", "width_arg", "classes_arg", "channels_arg"):
                if key in self.model_fields_set:
                    raise ValueError(f"{key} applies to model; a backbone's width is width_mults")
            paths = [p.path for p in self.positions if p.path is not None]
            if paths:
                raise ValueError(f"a backbone's positions are layer indices, not paths (got {paths[0]!r})")
            return self
        if "stem" in self.model_fields_set:
            raise ValueError("stem applies to backbone; a brought network is what its factory builds")
        if self.width_arg is None and len(self.width_mults) > 1:
            raise ValueError(
                f"{len(self.width_mults)} widths but no width_arg: name the factory argument the "
                "widths are passed as, or give one width"
            )
        named = {
            "width_arg": self.width_arg,
            "classes_arg": self.classes_arg,
            "channels_arg": self.channels_arg,
        }
        given = [(key, argument) for key, argument in named.items() if argument is not None]
        for key, argument in given:
            if argument in self.model_args:
                raise ValueError(f"{key} {argument!r} is also in model_args; give it in one place")
        if len({argument for _, argument in given}) < len(given):
            raise ValueError(f"{', '.join(k for k, _ in given)} name one factory argument twice")
        return self


def one_line(error: ValidationError, source: str) -> str:
    """The first schema problem as one line naming the key, e.g. "unknown key 'foo'"."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        return f"{source}: unknown key {where!r}"
    if first["type"] == "missing":
        return f"{source}: missing key {where!r}"
    message = str(first["msg"]).removeprefix("Value error, ")
    if not first["loc"]:  # a rule over several keys: its message names them
        return f"{source}: {message}"
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
    latency_ms: float | None = None  # predicted, where the study has a latency table

    @property
    def key(self) -> str:
        return self.key_of(self.width_mult, self.plan)

    @staticmethod
    def key_of(width_mult: float, plan: str) -> str:
        """The value of the study's ``candidate`` parameter: "α|plan" (the one place it is built)."""
        return f"{width_mult:g}|{plan}"

    @staticmethod
    def split_key(key: str) -> tuple[float, str]:
        """(α, plan) of a candidate key (the one place it is read)."""
        width_text, _, plan = key.partition("|")
        return float(width_text), plan
