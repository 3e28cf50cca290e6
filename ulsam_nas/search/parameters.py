"""The sampler's view of a search space: one parameter per choice, so that what a trained
configuration scored tells the sampler about its neighbours (the same width, the same action at
a position, a nearby g), and a space is never enumerated before the first trial.

Parameters (Optuna distributions; ``i`` is a position's number: a built-in's layer index, a
brought network's position as ``analyze`` numbers it):

* ``width`` — the rank of the width multiplier among the space's widths (an integer: ordered);
* ``at{i}`` — ``none`` or an action the space allows at position ``i`` (``insert``, ``replace``,
  ``swap``, ``remove``: the plan's ``swap@i:none``);
* ``at{i}.module`` — which module, only where the space offers several and ``at{i}`` is not none;
* ``at{i}.g`` — the rank of g among the space's group counts (ordered), only when ``at{i}`` is
  not none and the module has groups.

A draw decodes to a configuration: a width and a canonical plan (its text sorts placements and
fills every option), whose key ``"α|plan"`` identifies it, so two parameter sets that build
the same network share their trained seeds.  Its constraints (``Optuna's trial.set_constraint``;
feasible when every value is ≤ 0): ``macs`` and ``params`` as the fraction over the budget
(closed form), ``latency`` likewise (predicted from the study's latency table), ``modules``
above ``max_modules``, and ``invalid``, the number of placements the network cannot take at that
width (g not dividing the channels there, say).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import optuna

from ulsam_nas.analysis.plans import listing
from ulsam_nas.attention import get_attention
from ulsam_nas.errors import InvalidInput
from ulsam_nas.latency import LatencyTable
from ulsam_nas.networks import Network, plan_cost
from ulsam_nas.networks.batch import BatchCost, CostTable, check_apart
from ulsam_nas.networks.plan import REMOVE, Placement, parse_plan, plan_text
from ulsam_nas.search.config import Budget
from ulsam_nas.search.network import BuiltinNetwork, StudyNetwork
from ulsam_nas.search.space import Candidate, SearchSpace

NONE = "none"
WIDTH = "width"


def action_name(index: int) -> str:
    return f"at{index}"


def module_name(index: int) -> str:
    return f"at{index}.module"


def groups_name(index: int) -> str:
    return f"at{index}.g"


@dataclass(frozen=True)
class Assessment:
    """A configuration judged before any training: its cost (None when it cannot be built), its
    constraint values (all ≤ 0 when feasible) and, when infeasible, why in words."""

    width_mult: float
    plan: str
    candidate: Candidate | None
    constraints: dict[str, float]
    reasons: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return Candidate.key_of(self.width_mult, self.plan)

    @property
    def feasible(self) -> bool:
        return all(v <= 0 for v in self.constraints.values())


@dataclass(frozen=True)
class SlotPosition:
    """A position of the space resolved against the network: its number and the actions it
    offers (a path pattern in the space becomes one per matching position)."""

    index: int
    actions: tuple[str, ...]


@dataclass
class ParameterSpace:
    space: SearchSpace
    network: StudyNetwork
    budget: Budget = field(default_factory=Budget)
    latency: LatencyTable | None = None  # the study's latency table (``use_latency``)

    def __post_init__(self) -> None:
        self._assessments: dict[tuple[float, str], Assessment] = {}
        grouped = [m for m in self.space.modules if "groups" in get_attention(m).option_names()]
        self._grouped = set(grouped)
        self.positions = self._resolve_positions()
        # A module inside one a plan replaces would go with it: the configuration counts assume
        # every combination builds, so the space may not offer both.
        check_apart(self._table(self.space.width_mults[0]), [self._options(p) for p in self.positions])
        self._check_groups_usable()

    def position_names(self) -> dict[int, str]:
        """A brought network's positions by module path (empty for a built-in: its positions
        are its layer indices)."""
        if self.network.label(self.space.width_mults[0], "") == "" and isinstance(
            self.network, BuiltinNetwork
        ):
            return {}
        network = self._table(self.space.width_mults[0])
        return {p.index: network.where(p.index) for p in self.positions}

    def _resolve_positions(self) -> tuple[SlotPosition, ...]:
        """Each position of the space checked against the network at every width (a brought
        network must offer the same positions at each), patterns expanded."""
        first = self._table(self.space.width_mults[0])
        for width in self.space.width_mults[1:]:
            other = self._table(width)
            if [other.where(i) for i in range(other.last_index + 1)] != [
                first.where(i) for i in range(first.last_index + 1)
            ]:
                raise InvalidInput(
                    f"{self.network.name} has other positions at width {width:g} than at "
                    f"{self.space.width_mults[0]:g}; allowed: widths that change channels, not modules"
                )
        found: dict[int, SlotPosition] = {}
        for position in self.space.positions:
            named = position.path if position.path is not None else str(position.index)
            indices = _indices(first, position.path, position.index)
            for index in indices:
                actions = []
                for action in position.actions:
                    allowed = first.allowed("swap" if action == "remove" else action)
                    if index in allowed:
                        actions.append(action)
                    elif len(indices) == 1:
                        where = listing(
                            [str(i) if position.path is None else first.where(i) for i in allowed]
                        )
                        raise InvalidInput(
                            f"position {named}: {action} is not allowed there in {self.network.name}; "
                            f"allowed at: {where}"
                        )
                if index in found:
                    raise InvalidInput(f"position {named} names {first.where(index)} again; allowed: once")
                if actions:
                    found[index] = SlotPosition(index, tuple(actions))
            for action in position.actions:
                if not any(action in found[i].actions for i in indices if i in found):
                    raise InvalidInput(f"position {named}: {action} is allowed at none of its positions")
        return tuple(found[i] for i in sorted(found))

    # -- parameters ----------------------------------------------------------------------------
    @cached_property
    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        """Every parameter a draw may have (conditional ones included)."""
        found: dict[str, optuna.distributions.BaseDistribution] = {
            WIDTH: optuna.distributions.IntDistribution(0, len(self.space.width_mults) - 1)
        }
        for position in self.positions:
            found[action_name(position.index)] = optuna.distributions.CategoricalDistribution(
                [NONE, *position.actions]
            )
            if len(self.space.modules) > 1:
                found[module_name(position.index)] = optuna.distributions.CategoricalDistribution(
                    list(self.space.modules)
                )
            if self._grouped:
                found[groups_name(position.index)] = optuna.distributions.IntDistribution(
                    0, len(self.space.groups) - 1
                )
        return found

    def suggest(self, trial: optuna.Trial) -> tuple[float, str]:
        """Draw a configuration through ``trial`` (a queued trial returns its fixed parameters):
        (width multiplier, canonical plan)."""
        width = self.space.width_mults[trial.suggest_int(WIDTH, 0, len(self.space.width_mults) - 1)]
        placements = []
        for position in self.positions:
            action = trial.suggest_categorical(action_name(position.index), [NONE, *position.actions])
            if action == NONE:
                continue
            if action == "remove":
                placements.append(Placement("swap", position.index, REMOVE))
                continue
            module = self.space.modules[0]
            if len(self.space.modules) > 1:
                module = trial.suggest_categorical(module_name(position.index), list(self.space.modules))
            options = {}
            if module in self._grouped:
                rank = trial.suggest_int(groups_name(position.index), 0, len(self.space.groups) - 1)
                options["groups"] = self.space.groups[rank]
            placements.append(Placement(str(action), position.index, str(module), **options))
        return width, plan_text(placements)

    def params_of(self, width_mult: float, plan: str) -> dict[str, Any]:
        """The parameters that draw this configuration (the inverse of ``suggest``)."""
        if width_mult not in self.space.width_mults:
            raise InvalidInput(f"width {width_mult:g} is not in the space; allowed: {self.space.width_mults}")
        params: dict[str, Any] = {WIDTH: self.space.width_mults.index(width_mult)}
        by_index = {p.index: p for p in self._table(width_mult).resolve(parse_plan(plan))}
        for position in self.positions:
            placement = by_index.pop(position.index, None)
            params[action_name(position.index)] = _action_of(placement)
            if placement is None or placement.module == REMOVE:
                continue
            if len(self.space.modules) > 1:
                params[module_name(position.index)] = placement.module
            if placement.module in self._grouped:
                params[groups_name(position.index)] = self.space.groups.index(placement.config["groups"])
        if by_index:
            raise InvalidInput(
                f"plan {plan!r} places a module at {sorted(by_index)}, not a position of the space"
            )
        return params

    # -- judging a configuration ---------------------------------------------------------------
    def assess(self, width_mult: float, plan: str) -> Assessment:
        """Cost and constraints of a configuration (closed form, remembered: a study meets the
        same configurations again and again)."""
        found = self._assessments.get((width_mult, plan))
        if found is None:
            found = self._assessments[width_mult, plan] = self._assess(width_mult, plan)
        return found

    def _assess(self, width_mult: float, plan: str) -> Assessment:
        placements = parse_plan(plan)
        constraints = {"modules": float(len(placements) - self.space.max_modules)}
        reasons = []
        if constraints["modules"] > 0:
            reasons.append(f"{len(placements)} modules, more than max_modules {self.space.max_modules}")
        network = self._table(width_mult)
        invalid = []
        for placement in placements:
            try:
                network.resolve_placement(placement)
            except InvalidInput as error:
                invalid.append(str(error))
        if not invalid:
            try:
                network.resolve(placements)
            except InvalidInput as error:  # placements that cannot go together (one inside another)
                invalid.append(str(error))
        constraints["invalid"] = float(len(invalid))
        reasons += invalid
        candidate = None
        if not invalid:
            cost = plan_cost(network, placements, self.budget.convention)
            latency = None if self.latency is None else self.latency.predict(network, placements)
            text = plan_text(placements)
            candidate = Candidate(width_mult, text, cost.macs, cost.params, len(placements), latency)
            if math.isfinite(self.budget.macs):
                constraints["macs"] = cost.macs / self.budget.macs - 1
            if math.isfinite(self.budget.params):
                constraints["params"] = cost.params / self.budget.params - 1
            for name, value, limit in (
                ("MACs", cost.macs, self.budget.macs),
                ("params", cost.params, self.budget.params),
            ):
                if value > limit:
                    reasons.append(f"{value / 1e6:.3f} M{name} over the budget of {limit / 1e6:g} M")
            limit_ms = self.budget.latency_ms
            if limit_ms is not None and latency is not None:
                constraints["latency"] = latency / limit_ms - 1
                if latency > limit_ms:
                    reasons.append(f"{latency:.3f} ms predicted, over the latency budget of {limit_ms:g} ms")
        return Assessment(width_mult, plan_text(placements), candidate, constraints, tuple(reasons))

    def candidate(self, key: str) -> Candidate:
        """A configuration from its key "α|plan", with its cost (it must be buildable)."""
        assessment = self.assess(*Candidate.split_key(key))
        if assessment.candidate is None:
            raise InvalidInput(f"configuration {key!r} cannot be built: {assessment.reasons[0]}")
        return assessment.candidate

    def within(self, candidate: Candidate) -> bool:
        """Whether a configuration is inside the budget (closed-form costs, predicted latency)."""
        fast = (
            self.budget.latency_ms is None
            or candidate.latency_ms is None
            or candidate.latency_ms <= self.budget.latency_ms
        )
        return candidate.macs <= self.budget.macs and candidate.params <= self.budget.params and fast

    def use_latency(self, table: LatencyTable, base: np.ndarray, delta: np.ndarray) -> None:
        """Predict latencies from ``table``; ``base`` and ``delta``: its predictions per width and
        each option's change per (width, slot, option) (``search.latency.latency_arrays``).
        Every configuration judged before is judged again."""
        self.cost_table.set_latency(base, delta)
        self.latency = table
        self._assessments.clear()

    def assessment(self, candidate: Candidate) -> Assessment:
        return self.assess(candidate.width_mult, candidate.plan)

    @property
    def widest_plain(self) -> str | None:
        """The widest plain backbone inside the budget: the study's vanilla reference; None when
        every plain backbone is over it."""
        plain = [self.candidate(Candidate.key_of(w, "")) for w in self.space.width_mults]
        inside = [c for c in plain if self.within(c)]
        return max(inside, key=lambda c: c.width_mult).key if inside else None

    # -- the whole space ------------------------------------------------------------------------
    @cached_property
    def cost_table(self) -> CostTable:
        """Each position's options (nothing first) at every width, costed once."""
        return CostTable(
            [self._table(width) for width in self.space.width_mults],
            [[None, *self._options(position)] for position in self.positions],
            convention=self.budget.convention,
        )

    def configuration_counts(self) -> dict[float, int]:
        """Buildable configurations with at most ``max_modules`` modules, per width (exact, from
        the number of valid options at each position; no enumeration)."""
        table = self.cost_table
        counts = {}
        for w, width in enumerate(self.space.width_mults):
            valid = [int(table.option_valid[w, s, 1 : len(slot)].sum()) for s, slot in enumerate(table.slots)]
            counts[width] = sum(_elementary_symmetric(valid)[: self.space.max_modules + 1])
        return counts

    def product_size(self) -> int:
        """How many combinations the parameters span (before any constraint)."""
        return len(self.space.width_mults) * math.prod(len(slot) for slot in self.cost_table.slots)

    def costed(self, width_index: np.ndarray, choices: np.ndarray) -> tuple[BatchCost, np.ndarray]:
        """Closed-form costs of a batch of configurations and which of them are buildable and
        inside the budget (the one definition every batch count uses)."""
        cost = self.cost_table.evaluate(width_index, choices)
        inside = cost.valid & (cost.macs <= self.budget.macs) & (cost.params <= self.budget.params)
        if self.budget.latency_ms is not None and cost.latency is not None:
            inside &= cost.latency <= self.budget.latency_ms
        return cost, inside

    def enumerate(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every buildable configuration with at most ``max_modules`` modules, in chunks (one per
        width and set of filled positions): (width ranks, choices)."""
        table = self.cost_table
        slots = range(len(table.slots))
        for w in range(len(self.space.width_mults)):
            valid = [np.flatnonzero(table.option_valid[w, s, 1 : len(table.slots[s])]) + 1 for s in slots]
            for count in range(min(self.space.max_modules, len(valid)) + 1):
                for filled in itertools.combinations(slots, count):
                    if any(len(valid[s]) == 0 for s in filled):
                        continue
                    grids = np.meshgrid(*(valid[s] for s in filled), indexing="ij") if filled else []
                    rows = int(np.prod([len(valid[s]) for s in filled])) if filled else 1
                    choices = np.zeros((rows, len(valid)), dtype=np.intp)
                    for s, grid in zip(filled, grids, strict=True):
                        choices[:, s] = grid.ravel()
                    yield np.full(rows, w, dtype=np.intp), choices

    def sample(self, rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
        """``count`` buildable configurations with at most ``max_modules`` modules, each equally
        likely: (width ranks, choices)."""
        table = self.cost_table
        counts = self.configuration_counts()
        weights = np.array([counts[w] for w in self.space.width_mults], dtype=float)
        widths = rng.choice(len(weights), size=count, p=weights / weights.sum())
        choices = np.zeros((count, len(table.slots)), dtype=np.intp)
        for w in np.unique(widths):
            rows = np.flatnonzero(widths == w)
            valid = [
                np.flatnonzero(table.option_valid[w, s, 1 : len(slot)]) + 1
                for s, slot in enumerate(table.slots)
            ]
            for row in rows:
                for s in _weighted_subset(rng, [len(v) for v in valid], self.space.max_modules):
                    choices[row, s] = rng.choice(valid[s])
        return widths, choices

    def cheapest(self) -> Candidate:
        """The configuration with the fewest MACs (exact, no enumeration)."""
        return self._least("macs")

    def fewest_params(self) -> Candidate:
        """The configuration with the fewest parameters (exact, no enumeration)."""
        return self._least("params")

    def fastest(self) -> Candidate:
        """The configuration with the lowest predicted latency (``use_latency`` first)."""
        return self._least("latency")

    def _least(self, kind: str) -> Candidate:
        width_rank, choices = self.cost_table.least(kind, self.space.max_modules)
        width, plan = self.configuration(width_rank, choices)
        return self.candidate(Candidate.key_of(width, plan))

    def configuration(self, width_rank: int, choices: Sequence[int]) -> tuple[float, str]:
        """(width multiplier, canonical plan) of one row of ``enumerate`` or ``sample``."""
        width = self.space.width_mults[int(width_rank)]
        placements = self._table(width).resolve(self.cost_table.placements(choices))
        return width, plan_text(placements)

    # -- helpers --------------------------------------------------------------------------------
    def _table(self, width_mult: float) -> Network:
        return self.network.at(width_mult)

    def _options(self, position: SlotPosition) -> list[Placement]:
        found = []
        for action in position.actions:
            if action == "remove":
                found.append(Placement("swap", position.index, REMOVE))
                continue
            for module in self.space.modules:
                if module in self._grouped:
                    found += [Placement(action, position.index, module, groups=g) for g in self.space.groups]
                else:
                    found.append(Placement(action, position.index, module))
        return found

    def _check_groups_usable(self) -> None:
        """A group count that divides the channels of no position at any width is a mistake in
        the space file, refused naming the channels there."""
        if not self._grouped or not self.positions:
            return
        channels = {
            self._table(width).module_shape(p.index, action)[0]
            for width in self.space.width_mults
            for p in self.positions
            for action in p.actions
            if action != "remove"
        }
        for g in self.space.groups:
            if all(c % g for c in channels):
                raise InvalidInput(
                    f"groups {g} divides the channels of no position at any width "
                    f"(channels there: {', '.join(str(c) for c in sorted(channels))}); use divisors of them"
                )


def _indices(network: Any, path: str | None, index: int | None) -> list[int]:
    """The position numbers a space's position names."""
    if path is not None:
        return list(network.find(path))
    assert index is not None  # the schema requires one of index and path
    if index > network.last_index:
        raise InvalidInput(
            f"position {index} is out of range for {network.name}; allowed: 0..{network.last_index}"
        )
    return [index]


def _action_of(placement: Placement | None) -> str:
    if placement is None:
        return NONE
    return "remove" if placement.module == REMOVE else placement.action


def _elementary_symmetric(values: Sequence[int]) -> list[int]:
    """e_k(values) for k = 0..len(values): the number of ways to choose k positions and one of
    each chosen position's options."""
    e = [1] + [0] * len(values)
    for v in values:
        for k in range(len(e) - 1, 0, -1):
            e[k] += e[k - 1] * v
    return e


def _weighted_subset(rng: np.random.Generator, sizes: Sequence[int], most: int) -> list[int]:
    """Positions to fill, chosen so that every configuration with at most ``most`` modules is
    equally likely (a subset's weight is the product of its positions' option counts)."""
    # ways[i][k]: configurations of positions i.. with exactly k modules.
    n = len(sizes)
    ways = [[0] * (most + 2) for _ in range(n + 1)]
    ways[n][0] = 1
    for i in range(n - 1, -1, -1):
        for k in range(most + 1):
            ways[i][k] = ways[i + 1][k] + (sizes[i] * ways[i + 1][k - 1] if k else 0)
    totals = [ways[0][k] for k in range(most + 1)]
    k = int(rng.choice(most + 1, p=np.array(totals, dtype=float) / sum(totals)))
    chosen = []
    for i in range(n):
        if k == 0:
            break
        take = sizes[i] * ways[i + 1][k - 1]
        if rng.random() * ways[i][k] < take:
            chosen.append(i)
            k -= 1
    return chosen
