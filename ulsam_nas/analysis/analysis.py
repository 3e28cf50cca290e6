"""``analyze(model, input_size)``: the exact closed-form cost of any traceable network, and of the
same network with attention modules placed by a plan, without tracing it again.

The network is traced once (``trace``); every operation is costed by the closed forms'
primitives (``rules``) and every parameter counted once from the module tree.  Each position's
subtree (the operations run inside that module's call, and the parameters only it holds) is
summed up front, so a plan costs the plain total, minus the subtrees it replaces, plus its
modules' closed forms: the same arithmetic as ``network_cost``, for any network.
"""

from __future__ import annotations

import functools
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from torch import nn

from ulsam_nas.analysis import build as building
from ulsam_nas.analysis import plans
from ulsam_nas.analysis.backward import gradient_flags
from ulsam_nas.analysis.graph import (
    Item,
    Param,
    Position,
    Uncosted,
    UncostedOperators,
    cost_nodes,
    find_positions,
    parameters,
    within,
)
from ulsam_nas.analysis.rows import breakdown_rows, make_cost
from ulsam_nas.analysis.rules import has_module_rule
from ulsam_nas.analysis.trace import eval_mode, trace
from ulsam_nas.attention import get_attention
from ulsam_nas.attention._common import check_positive_int
from ulsam_nas.cost.compose import check_convention, paper_of
from ulsam_nas.cost.cost import Cost
from ulsam_nas.errors import InvalidInput
from ulsam_nas.networks.core import Row, plan_cost
from ulsam_nas.networks.memo import Memo
from ulsam_nas.networks.plan import REMOVE, TAKE_OUT, Placement, PlanLike, ResolvedPlan


class Analysis:
    """A traced network's closed-form cost, its positions, and plans over them."""

    def __init__(
        self,
        model: nn.Module,
        input_size: tuple[int, int, int],
        items: list[Item],
        params: list[Param],
        positions: list[Position],
        not_positions: dict[str, str],
        remainder: list[Uncosted],
        ends: dict[str, int],
    ) -> None:
        self.model = model
        self.name = type(model).__name__  # how messages name it; analyze's caller may say more
        self.input_size = input_size
        self.items = tuple(items)
        self.params = tuple(params)
        self.positions = tuple(positions)
        self.remainder = tuple(remainder)
        self._not_positions = not_positions
        self._ends = ends  # path → graph index after the last node its call created
        self._subtrees = self._subtree_costs()
        self._totals: dict[str, Cost] = {"exact": self._plain_total()}
        self._numbers = {p.path: p.index for p in self.positions}
        self._memo = Memo()

    # -- precomputed costs --------------------------------------------------------------------
    def _plain_total(self) -> Cost:
        values: dict[tuple[str, str], int] = defaultdict(int)
        for item in self.items:
            for key, v in item.values.items():
                values[key] += v
        params_by: dict[str, int] = defaultdict(int)
        for p in self.params:
            params_by[p.kind] += p.numel
        return make_cost(values, params_by)

    def _subtree_costs(self) -> list[Cost]:
        """Per position: the compute of every operation run inside its call, and the
        parameters that only it holds (a module shared with the rest stays when it goes)."""
        index = {p.path: p.index for p in self.positions}
        values: list[dict[tuple[str, str], int]] = [defaultdict(int) for _ in self.positions]
        for item in self.items:
            for path in set(item.scope):
                if path in index:
                    for key, v in item.values.items():
                        values[index[path]][key] += v
        params_by: list[dict[str, int]] = [defaultdict(int) for _ in self.positions]
        for p in self.params:
            parts = p.owner.split(".") if p.owner else []
            for depth in range(1, len(parts) + 1):
                path = ".".join(parts[:depth])
                if path in index and within(p.names, path):
                    params_by[index[path]][p.kind] += p.numel
        return [make_cost(v, b) for v, b in zip(values, params_by, strict=True)]

    def subtree(self, position: int, convention: str = "exact") -> Cost:
        """What replacing a position removes: its module's compute and its own parameters."""
        exact = self._subtrees[position]
        return exact if convention == "exact" else paper_of(exact)

    def total(self, convention: str = "exact") -> Cost:
        """The plain network's cost (what ``cost()`` returns without a plan)."""
        check_convention(convention)
        if convention not in self._totals:
            self._totals[convention] = paper_of(self._totals["exact"])
        return self._totals[convention]

    # -- plans --------------------------------------------------------------------------------
    def position(self, target: str | int) -> Position:
        """A position by path (or by number)."""
        if isinstance(target, bool) or not isinstance(target, int | str):
            raise InvalidInput(f"position {target!r} is invalid; allowed: a path or a position number")
        if isinstance(target, int):
            if not 0 <= target < len(self.positions):
                raise InvalidInput(
                    f"position {target} is out of range; allowed: 0..{len(self.positions) - 1}"
                )
            return self.positions[target]
        return self.positions[plans.position_number(target, self.positions, self._not_positions, self.model)]

    def find(self, target: str) -> list[int]:
        """The position numbers a path, a position number or a path pattern (``layer*.1``) names."""
        if plans.is_pattern(target):
            return plans.matching(f"insert@{target}", "insert", target, self.positions)
        return [plans.position_number(target, self.positions, self._not_positions, self.model, self._numbers)]

    def resolve(self, plan: PlanLike) -> ResolvedPlan:
        """A plan's placements (index = position number), validated, every option filled, in
        network order; cached per plan."""
        if isinstance(plan, ResolvedPlan) and plan.against(self):
            return plan
        key: Any = plan if plan is None or isinstance(plan, str | Placement) else tuple(plan)

        def resolved() -> ResolvedPlan:
            parsed = plans.parse_plan(key, self.positions, self._not_positions, self.model, self._segment)
            return ResolvedPlan(self, plans.check_plan([self._resolved(p) for p in parsed], self.positions))

        return self._memo.get(("plan", key), resolved)

    def _segment(self, segment: str) -> Sequence[Placement]:
        """One segment of a plan's text, parsed once per analysis (plans share segments)."""
        args = (segment, self.positions, self._not_positions, self.model, self._numbers)
        return self._memo.get(("segment", segment), lambda: tuple(plans.segment_placements(*args)))

    def _resolved(self, p: Placement) -> Placement:
        """A placement checked against its position with every option filled, once per analysis."""
        return self._memo.get(("placement", p), lambda: plans.resolve_placement(p, self.positions))

    def plan_text(self, plan: PlanLike) -> str:
        """The canonical text of a plan, with paths ("" for the plain network)."""
        return plans.plan_text(self.resolve(plan), self.positions)

    # -- the Network protocol (ulsam_nas.networks.core) ----------------------------------------
    @property
    def last_index(self) -> int:
        return len(self.positions) - 1

    def allowed(self, action: str) -> list[int]:
        """Positions where ``action`` is allowed: insert anywhere, replace where the output keeps
        the input's shape, swap at an attention gate (an SE: output = input × its gate)."""
        return [p.index for p in self.positions if plans.allows(p, action)]

    def where(self, index: int) -> str:
        return self.positions[index].path or "(the model)"

    def inside(self, inner: int, outer: int) -> bool:
        return self.positions[inner].path.startswith(self.positions[outer].path + ".")

    def module_shape(self, index: int, action: str) -> tuple[int, int, int]:
        return self.positions[index].out_shape

    def resolve_placement(self, placement: Placement) -> Placement:
        return self._resolved(placement)

    @functools.cached_property
    def fingerprint(self) -> str:
        """The model's class, input size and module tree (its ``repr``: every submodule and its
        settings; a change to ``forward`` code alone is not seen)."""
        size = "x".join(map(str, self.input_size))
        tree = hashlib.sha256(repr(self.model).encode()).hexdigest()[:16]
        return f"{type(self.model).__name__}:{size}:{tree}"

    def taken_out(self, index: int, action: str) -> str:
        return self.positions[index].path

    def placement_cost(self, p: Placement, convention: str) -> Cost:
        return self._memo.get(("cost", p, convention), lambda: self._placement_cost(p, convention))

    def _placement_cost(self, p: Placement, convention: str) -> Cost:
        channels, height, width = self.positions[p.index].out_shape
        if p.module == REMOVE:  # swap@path:none
            found = Cost(0, 0, {}, {}, {}, convention, train_by={} if convention == "exact" else None)
        else:
            found = get_attention(p.module).resolved_cost(channels, height, width, p.config, convention)
            position = self.positions[p.index]
            if not (position.grad_in if p.action in TAKE_OUT else position.grad_out):
                # a trained module where no gradient flows yet changes which later values need
                # one: no closed form of that training step
                found = replace(found, train_by=None)
        return found - self.subtree(p.index, convention) if p.action in TAKE_OUT else found

    def cost(self, plan: PlanLike = None, convention: str = "exact") -> Cost:
        """The network's cost with ``plan`` applied: the plain total, minus the subtrees the plan
        replaces, plus its modules' closed forms (no tracing).  ``exact`` counts every parameter
        and MAC; ``paper`` keeps only conv/linear weights and biases of the network's own
        layers, and each module at its paper cost.  ``ops["uncosted_ops"]`` counts operators
        without a closed form (see ``remainder``)."""
        return plan_cost(self, plan, convention)

    def build(self, plan: PlanLike) -> nn.Module:
        """A copy of the model with the plan's modules (see ``analyze.build`` for the names)."""
        return building.build(self.model, self.resolve(plan), self.positions)

    def breakdown(self, plan: PlanLike = None, convention: str = "exact") -> list[Row]:
        """One row per costed operation in network order (with the parameters of the module it
        calls), rows for parameters no costed call uses, and a row per placed module right after
        the module it follows or replaces.  The rows not ``replaced`` sum to ``cost(plan)``."""
        check_convention(convention)
        return breakdown_rows(self, self.resolve(plan), convention)

    def end_of(self, path: str) -> int:
        return self._ends[path]

    def __repr__(self) -> str:
        size = "×".join(map(str, self.input_size))
        return (
            f"Analysis({type(self.model).__name__}, {size}, {len(self.positions)} positions, "
            f"{len(self.remainder)} uncosted operators)"
        )


def _check_input_size(input_size: Iterable[int]) -> tuple[int, int, int]:
    size = tuple(input_size) if isinstance(input_size, tuple | list) else None
    if size is None or len(size) != 3:
        raise InvalidInput(f"input_size={input_size!r} is invalid; allowed: (channels, height, width)")
    for name, value in zip(("channels", "height", "width"), size, strict=True):
        check_positive_int(name, value)
    return (size[0], size[1], size[2])


def analyze(model: nn.Module, input_size: tuple[int, int, int], *, strict: bool = True) -> Analysis:
    """Trace ``model`` once on a 1×C×H×W input (eval mode, no gradients; no FLOP counter) and cost
    every operation in closed form.  ``strict``: operations without a closed form raise
    UncostedOperators (an InvalidInput) naming each type, its count and first place; otherwise
    they are listed in ``Analysis.remainder`` and counted in ``cost().ops["uncosted_ops"]``."""
    if not isinstance(model, nn.Module):
        raise InvalidInput(f"model must be a torch.nn.Module, got {type(model).__name__}")
    size = _check_input_size(input_size)
    with eval_mode(model):
        traced = trace(model, size, has_module_rule)
    needs_grad = gradient_flags(traced, model)
    items, remainder = cost_nodes(traced, model, needs_grad)
    if strict and remainder:
        raise UncostedOperators(remainder)
    positions, not_positions = find_positions(model, traced, needs_grad)
    ends = {call.path: call.end_node for call in traced.calls}
    return Analysis(model, size, items, parameters(model), positions, not_positions, remainder, ends)
