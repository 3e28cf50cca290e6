"""Placement plans: where attention modules go in a backbone.

Text grammar: ``ACTION@INDEX[:MODULE][:KEY=VALUE]...``, placements separated by commas; a
segment containing ``=`` is a config option; the module defaults to ``ulsam``.  Example:
``replace@9:ulsam:groups=4,insert@13:groups=8``.  ``insert@i`` puts a module after layer i;
``replace@i`` replaces layer i; ``swap@i`` replaces the attention a block already has
(MobileNetV3's SE) with the module, or removes it with the module ``none``.  ``@*`` places the
same module at every index where the action is allowed (``swap@*:eca``); a placement at a
named index overrides it there.  Plans are order-independent and print sorted by index.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final, Literal

from ulsam_nas.attention import get_attention
from ulsam_nas.attention._common import parse_number
from ulsam_nas.errors import DefaultOptionInvalid, InvalidInput

ACTIONS = ("insert", "replace", "swap")
DEFAULT_MODULE = "ulsam"
EVERY: Final = "*"  # the index of a placement written ``@*``: every index where its action is allowed
REMOVE = "none"  # the module of ``swap@i:none``: the block's attention is removed
TAKE_OUT = ("replace", "swap")  # the actions that take the module at their position out


class Placement:
    """One attention module at one layer index: ``Placement("replace", 9, "ulsam", groups=4)``;
    ``Placement("insert", EVERY)`` (``"*"``) is one at every index where its action is allowed."""

    __slots__ = ("_hash", "_index", "_key", "action", "config", "module")

    def __init__(
        self, action: str, index: int | Literal["*"], module: str = DEFAULT_MODULE, **config: Any
    ) -> None:
        if action not in ACTIONS:
            raise InvalidInput(f"action {action!r} is unknown; allowed: {', '.join(ACTIONS)}")
        if index != EVERY and (isinstance(index, bool) or not isinstance(index, int) or index < 0):
            raise InvalidInput(
                f"index {index!r} is invalid; allowed: a layer index >= 0, or * for every layer "
                "(an index never counts from the end)"
            )
        if module == REMOVE:
            if action != "swap" or config:
                raise InvalidInput(
                    f"module {REMOVE!r} is allowed only as swap@INDEX:{REMOVE} (without options), "
                    f"not with {action}"
                )
        else:
            get_attention(module)
        # "every" is its own state, not an integer: no number a user writes can mean it.
        self._fill(action, None if index == EVERY else int(index), module, config)

    def _fill(self, action: str, index: int | None, module: str, config: dict[str, Any]) -> None:
        self.action = action
        self._index: int | None = index
        self.module = module
        self.config: dict[str, Any] = dict(sorted(config.items()))
        # Placements are values (treat them as immutable): key and hash are computed once, since
        # the cost model looks them up in caches on every plan it evaluates.  An every-placement
        # sorts first.
        order = (0, 0) if index is None else (1, index)
        self._key = (order, action, module, tuple(self.config.items()))
        self._hash = hash(self._key)

    @property
    def every(self) -> bool:
        """Whether this placement is written ``@*`` (every index where its action is allowed)."""
        return self._index is None

    @property
    def index(self) -> int:
        """The layer index; an every-placement has none until a plan is resolved."""
        if self._index is None:
            raise ValueError(f"{self.text()} has no single index; resolve the plan against a network")
        return self._index

    def key(self) -> tuple[tuple[int, int], str, str, tuple[tuple[str, Any], ...]]:
        return self._key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Placement) and self._key == other._key

    def __hash__(self) -> int:
        return self._hash

    def __lt__(self, other: Placement) -> bool:
        return self._key < other._key

    def text(self) -> str:
        options = "".join(f":{k}={_format_value(v)}" for k, v in self.config.items())
        where = EVERY if self._index is None else str(self._index)
        return f"{self.action}@{where}:{self.module}{options}"

    @classmethod
    def checked(cls, action: str, index: int, module: str, config: dict[str, Any]) -> Placement:
        """A placement from parts already validated (a resolved plan's: every option filled and
        checked), without checking them again: the cost model makes one per placement it meets."""
        placement = object.__new__(cls)
        placement._fill(action, index, module, config)
        return placement

    def at(self, index: int) -> Placement:
        """This placement at another index (a ``@*`` placement, expanded)."""
        return Placement(self.action, index, self.module, **self.config)

    def __repr__(self) -> str:
        config = "".join(f", {k}={v!r}" for k, v in self.config.items())
        where = repr(EVERY) if self._index is None else str(self._index)
        return f"Placement({self.action!r}, {where}, {self.module!r}{config})"


def placement_error(placement: str, where: str, error: InvalidInput) -> InvalidInput:
    """A placed module's option error, prefixed with the placement as the user wrote it and where
    it lands; an option at its default says how to set it in the plan."""
    hint = ""
    if isinstance(error, DefaultOptionInvalid):
        hint = f"; set it in the plan: {placement}:{error.option}=VALUE"
    return InvalidInput(f"{placement} ({where}): {error}{hint}")


def _format_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _parse_value(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    if text.isascii() and text.isdigit():
        return int(text)
    for parse in (int, parse_number):
        try:
            return parse(text)
        except (ValueError, ZeroDivisionError):
            continue
    return text  # left for the module's own validation to reject with its message


def parse_placement(segment: str) -> Placement:
    parts = [p.strip() for p in segment.strip().split(":")]
    head = parts[0]
    if "@" not in head:
        raise InvalidInput(
            f"placement {segment.strip()!r} is malformed; expected ACTION@INDEX[:MODULE][:KEY=VALUE]"
        )
    action, _, index_text = head.partition("@")
    index: int | Literal["*"]
    try:
        index = EVERY if index_text.strip() == EVERY else int(index_text)
    except ValueError:
        raise InvalidInput(
            f"placement {segment.strip()!r}: index {index_text!r} is not an integer or *"
        ) from None
    if index != EVERY and index < 0:
        raise InvalidInput(
            f"placement {segment.strip()!r}: index {index} is negative; allowed: a layer index >= 0, "
            "or * for every layer (an index never counts from the end)"
        )
    module = DEFAULT_MODULE
    config: dict[str, Any] = {}
    for position, part in enumerate(parts[1:]):
        if "=" in part:
            key, _, value = part.partition("=")
            config[key.strip().replace("-", "_")] = _parse_value(value.strip())
        elif position == 0 and part:
            module = part
        else:
            raise InvalidInput(
                f"placement {segment.strip()!r}: {part!r} is neither a module (first) nor KEY=VALUE"
            )
    return Placement(action, index, module, **config)


PlanLike = str | Placement | Iterable[Placement] | None


def parse_plan(plan: PlanLike) -> list[Placement]:
    """A plan from its text form or from Placements; sorted by index, never two at one index."""
    if plan is None:
        placements: list[Placement] = []
    elif isinstance(plan, str):
        segments = [s for s in plan.split(",") if s.strip()]
        if plan.strip().lower() in ("", "none", "vanilla"):
            segments = []
        placements = [parse_placement(s) for s in segments]
    elif isinstance(plan, Placement):
        placements = [plan]
    else:
        placements = list(plan)
        for p in placements:
            if not isinstance(p, Placement):
                raise InvalidInput(f"plan entry {p!r} is not a Placement")
    placements.sort()
    for a, b in itertools.pairwise(placements):
        if a.key()[0] == b.key()[0]:
            where = EVERY if a.every else a.index
            raise InvalidInput(
                f"{a.text()} and {b.text()} share index {where}; allowed: one placement per index"
            )
    return placements


def plan_text(placements: Sequence[Placement]) -> str:
    """Canonical text of a plan ("" for the plain backbone)."""
    return ",".join(p.text() for p in sorted(placements))


class ResolvedPlan(tuple[Placement, ...]):
    """A plan resolved against one network: validated, every option filled, in network order.

    ``Network.resolve`` returns one, and takes it back as it is when it was resolved against
    the same network object, so a command that costs, breaks down, builds and checks a plan
    resolves it once.  Any function that takes a plan takes one."""

    network: object

    def __new__(cls, network: object, placements: Iterable[Placement]) -> ResolvedPlan:
        plan = super().__new__(cls, placements)
        plan.network = network
        return plan

    def __reduce__(self) -> tuple[Any, ...]:
        return (ResolvedPlan, (self.network, tuple(self)))

    def against(self, network: object) -> bool:
        """Whether this plan was resolved against ``network`` (that very object)."""
        return self.network is network


NO_MODULE = "none"  # the placement of a plain backbone


@dataclass(frozen=True)
class PlanFacts:
    """What reports and analyses read off a plan's text, parsed once per plan."""

    placement: str  # where modules go and which, without options: "replace@9:ulsam" ("none")
    groups: tuple[int, ...]  # each module's g, in plan order
    modules: int

    @property
    def shared_groups(self) -> int | None:
        """The g shared by every module that has one (None: none has, or they differ)."""
        return self.groups[0] if len(set(self.groups)) == 1 else None

    @property
    def groups_label(self) -> str:
        """ "g=4", "g=2/16", or "" for a plan without groups."""
        return "g=" + "/".join(str(g) for g in self.groups) if self.groups else ""

    @property
    def kind(self) -> str:
        """The plan's actions: "plain", "insert", "replace" or "insert+replace"."""
        actions = sorted({part.split("@", 1)[0] for part in self.placement.split(",")} - {NO_MODULE})
        return "+".join(actions) or "plain"


@lru_cache(maxsize=4096)
def plan_facts(plan: str) -> PlanFacts:
    placements = parse_plan(plan)
    return PlanFacts(
        ",".join(f"{p.action}@{p.index}:{p.module}" for p in placements) or NO_MODULE,
        tuple(int(p.config["groups"]) for p in placements if "groups" in p.config),
        len(placements),
    )
