"""Placement plans over an analyzed network, written with module paths.

The grammar is the backbones' (``ulsam_nas.networks.plan``) with a module path where the
backbones have a layer index: ``insert@layer3.1:ulsam:groups=4,replace@layer4.1:eca``.  A path is
looked up among the analysis's positions and rewritten to the position's number, so that the
backbones' parser reads the rest (module, options) and a plan is a list of ordinary
``Placement`` objects whose ``index`` is a position number.  A plain integer is read as a
position number, unless it is itself the path of a submodule (``nn.Sequential`` children are
named "0", "1", …; the path wins).
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Mapping, Sequence

from torch import nn

from ulsam_nas.analysis.graph import Position
from ulsam_nas.attention import get_attention
from ulsam_nas.errors import InvalidInput
from ulsam_nas.networks.plan import (
    EVERY,
    REMOVE,
    TAKE_OUT,
    Placement,
    PlanLike,
    parse_placement,
    placement_error,
)

SHOWN = 12  # positions an error message lists before "… (N in all)"
ACTIONS = ("insert", "replace", "swap")


def listing(paths: Sequence[str]) -> str:
    shown = ", ".join(paths[:SHOWN]) or "none"
    if len(paths) <= SHOWN:
        return shown
    return f"{shown}, … ({len(paths)} in all: see Analysis.positions or --positions)"


def position_number(
    target: str,
    positions: Sequence[Position],
    not_positions: dict[str, str],
    model: nn.Module,
    numbers: Mapping[str, int] | None = None,
) -> int:
    """The number of the position a plan names by path (or by number); ``numbers``: path →
    number, where the caller keeps one."""
    if numbers is None:
        numbers = {p.path: p.index for p in positions}
    if target in numbers:
        return numbers[target]
    allowed = f"allowed: {listing([p.path for p in positions])}"
    if target in not_positions:
        raise InvalidInput(f"{target!r} is not a position ({not_positions[target]}); {allowed}")
    if target.isdigit() and not _is_module(model, target):
        if int(target) < len(positions):
            return int(target)
        raise InvalidInput(f"position {target} is out of range; allowed: 0..{len(positions) - 1} or a path")
    if target and _is_module(model, target):
        raise InvalidInput(f"{target!r} is never called as a module in the traced forward; {allowed}")
    raise InvalidInput(f"{target!r} is not a submodule path of this model; {allowed}")


def _is_module(model: nn.Module, path: str) -> bool:
    try:
        model.get_submodule(path)
    except AttributeError:
        return False
    return True


def segment_placements(
    segment: str,
    positions: Sequence[Position],
    not_positions: dict[str, str],
    model: nn.Module,
    numbers: Mapping[str, int] | None = None,
) -> list[Placement]:
    """The placements one segment of a plan's text names (several for a pattern)."""
    text = segment.strip()
    head, separator, rest = text.partition(":")
    if "@" not in head:
        raise InvalidInput(f"placement {text!r} is malformed; expected ACTION@PATH[:MODULE][:KEY=VALUE]")
    action, _, target = (part.strip() for part in head.partition("@"))
    if is_pattern(target):
        indices = matching(text, action, target, positions)
    else:
        indices = [position_number(target, positions, not_positions, model, numbers)]
    found = []
    for number in indices:
        rewritten = f"{action}@{number}{separator}{rest}"
        try:
            found.append(parse_placement(rewritten))
        except InvalidInput as error:  # its message quotes the rewritten segment: show the user's
            raise InvalidInput(str(error).replace(repr(rewritten), repr(text))) from None
    return found


def is_pattern(target: str) -> bool:
    """Whether a plan's target is a path pattern (``*``, ``layer*.1``) rather than one path."""
    return "*" in target or "?" in target or "[" in target


def _pattern(target: str) -> re.Pattern[str]:
    """A path pattern as a regular expression: ``*`` and ``?`` stay inside one path component
    (``layer*.1`` is the second block of every stage, not everything below it), ``**`` crosses
    components, ``[...]`` is a character class; ``*`` alone is every position."""
    if target == EVERY:
        return re.compile(r".+")
    out = []
    i = 0
    while i < len(target):
        if target.startswith("**", i):
            out.append(".*")
            i += 2
        elif target[i] == "*":
            out.append(r"[^.]*")
            i += 1
        elif target[i] == "?":
            out.append(r"[^.]")
            i += 1
        elif target[i] == "[" and "]" in target[i + 1 :]:
            end = target.index("]", i + 1)
            out.append("[" + target[i + 1 : end].replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(target[i]))
            i += 1
    return re.compile("".join(out))


def allows(position: Position, action: str) -> bool:
    """insert anywhere; replace where the output keeps the input's shape; swap at a gate."""
    return action == "insert" or (position.replace if action == "replace" else position.gate)


def matching(text: str, action: str, target: str, positions: Sequence[Position]) -> list[int]:
    """The positions a pattern names where its action is allowed; for replace and swap only the
    outermost (a module inside a replaced one goes with it)."""
    pattern = _pattern(target)
    found = [p for p in positions if pattern.fullmatch(p.path) and allows(p, action)]
    if action in TAKE_OUT:
        found = [p for p in found if not any(p.path.startswith(q.path + ".") for q in found)]
    if not found:
        where = f"{action} is allowed" if action in TAKE_OUT else "a plan can name"
        candidates = [p.path for p in positions if allows(p, action)]
        raise InvalidInput(
            f"placement {text!r}: the pattern {target!r} matches no position where {where}; "
            f"allowed: {listing(candidates)}"
        )
    return [p.index for p in found]


def parse_plan(
    plan: PlanLike,
    positions: Sequence[Position],
    not_positions: dict[str, str],
    model: nn.Module,
    parse_segment: Callable[[str], Sequence[Placement]] | None = None,
) -> list[Placement]:
    """Placements (index = position number) from a plan's text or from Placement objects.  A
    pattern (``@*``, ``@layer*.1``) places its module at every matching position where its
    action is allowed; a placement that names one path overrides it there.  ``parse_segment``
    reads one comma-separated segment (default: ``segment_placements``; a caller may cache it)."""
    if parse_segment is None:
        parse_segment = functools.partial(
            segment_placements, positions=positions, not_positions=not_positions, model=model
        )
    if plan is None:
        return []
    if isinstance(plan, str):
        if plan.strip().lower() in ("", "none", "vanilla"):
            return []
        named: list[Placement] = []
        patterned: list[Placement] = []
        for segment in (s for s in plan.split(",") if s.strip()):
            target = segment.partition(":")[0].partition("@")[2].strip()
            found = parse_segment(segment)
            (patterned if is_pattern(target) else named).extend(found)
        taken = {p.index for p in named}
        return named + [p for p in patterned if p.index not in taken]
    placements = [plan] if isinstance(plan, Placement) else list(plan)
    for p in placements:
        if not isinstance(p, Placement):
            raise InvalidInput(f"plan entry {p!r} is not a Placement")
        if p.every:
            raise InvalidInput(
                f"{p.text()}: a Placement object names one position here; write @* or a path "
                "pattern in the plan's text"
            )
        if p.index >= len(positions):
            raise InvalidInput(
                f"{p.text()}: position {p.index} is out of range; allowed: 0..{len(positions) - 1}"
            )
    return placements


def placement_text(p: Placement, positions: Sequence[Position]) -> str:
    """``Placement.text()`` with the position's path for its number."""
    _, _, rest = p.text().partition(":")
    return f"{p.action}@{positions[p.index].path}:{rest}"


def plan_text(placements: Sequence[Placement], positions: Sequence[Position]) -> str:
    """A plan's canonical text with paths, in network order ("" for the plain network)."""
    return ",".join(placement_text(p, positions) for p in sorted(placements))


def resolve_placement(p: Placement, positions: Sequence[Position]) -> Placement:
    """Check a placement against its position (replace needs the same input and output shape;
    the module's options are validated at the output's size) and fill every option's default."""
    if p.every or p.index >= len(positions):
        raise InvalidInput(f"{p.text()}: position out of range; allowed: 0..{len(positions) - 1}")
    position = positions[p.index]
    if p.action == "replace" and not position.replace:
        allowed = listing([q.path for q in positions if q.replace])
        raise InvalidInput(
            f"{placement_text(p, positions)} is not allowed: {position.why_not_replace}; "
            f"replace is allowed at {allowed}"
        )
    if p.action == "swap" and not position.gate:
        allowed = listing([q.path for q in positions if q.gate]) if any(q.gate for q in positions) else "none"
        raise InvalidInput(
            f"{placement_text(p, positions)} is not allowed: {position.path} is not an attention gate "
            f"(a module whose output is its input times a gate it computes); swap is allowed at {allowed}"
        )
    if p.module == REMOVE:  # swap@path:none (the grammar allows 'none' with swap only)
        return Placement.checked(p.action, p.index, p.module, {})
    channels, height, width = position.out_shape
    try:
        options = get_attention(p.module).resolved_options(channels, height, width, **p.config)
    except InvalidInput as error:
        raise placement_error(
            placement_text(p, positions), f"at {channels}×{height}×{width}", error
        ) from None
    return Placement.checked(p.action, p.index, p.module, options)


def check_plan(placements: list[Placement], positions: Sequence[Position]) -> list[Placement]:
    """Sorted in network order; refuses two placements at one path and any placement inside a
    module another one replaces (it would be removed with it)."""
    placements = sorted(placements)
    for a, b in itertools.pairwise(placements):
        if a.index == b.index:
            raise InvalidInput(
                f"{placement_text(a, positions)} and {placement_text(b, positions)} are both at "
                f"{positions[a.index].path}; allowed: one placement per position"
            )
    for outer in placements:
        if outer.action not in TAKE_OUT:
            continue
        path = positions[outer.index].path
        for inner in placements:
            if positions[inner.index].path.startswith(path + "."):
                raise InvalidInput(
                    f"{placement_text(inner, positions)} lies inside {path}, which "
                    f"{placement_text(outer, positions)} replaces; allowed: placements outside a "
                    "replaced module"
                )
    return placements
