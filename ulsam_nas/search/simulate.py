"""A simulated objective with known true accuracies and known seed noise (no training), to
measure how often a selection procedure names a truly best candidate, and at what training cost.

Accuracy of candidate c at rung r with seed s: true[c][r] + noise[r]·(√ρ·z(r, s) + √(1−ρ)·e(c, r, s)),
where z is shared by every candidate trained with seed s (common random numbers: the same
initialization of shared layers and the same batch order) and e is the candidate's own part.
Draws are deterministic in (study seed, rung, seed, candidate), so re-evaluating a seed returns
the same accuracy, as retraining with the same seed does.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ulsam_nas.networks.plan import parse_plan
from ulsam_nas.search.parameters import ParameterSpace
from ulsam_nas.search.schedule import Costs, Ladder, Results, Selection, select
from ulsam_nas.search.space import Candidate

# Measured at the shipped first rung (benchmarks/proxy.py, reports/benchmarks.md: 12 paired seeds
# of three MobileNetV1 α 0.25 architectures on Fashion-MNIST): the seed sd, and the share of the
# seed variance paired candidates have in common, from the paired-difference sd (0.78 points):
# ρ = 1 − sd(d)² / 2σ².
MEASURED_NOISE = 0.0061
MEASURED_PAIRING = 1 - 0.0078**2 / (2 * 0.0061**2)


@dataclass(frozen=True)
class SimulatedObjective:
    true: Mapping[str, Sequence[float]]  # candidate -> true mean accuracy at each rung
    noise: Sequence[float]  # seed-to-seed sd at each rung
    pairing: float = 0.3  # share of the seed variance common to all candidates
    study_seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {key: i for i, key in enumerate(sorted(self.true))})

    def accuracy(self, key: str, rung: int, seed: int) -> float:
        shared = np.random.default_rng((self.study_seed, rung, seed, 0)).standard_normal()
        index: dict[str, int] = object.__getattribute__(self, "_index")
        own = np.random.default_rng((self.study_seed, rung, seed, 1 + index[key])).standard_normal()
        mix = math.sqrt(self.pairing) * shared + math.sqrt(1 - self.pairing) * own
        return float(self.true[key][rung] + self.noise[rung] * mix)

    def truly_best(self, among: Iterable[str] | None = None) -> float:
        """The highest true accuracy at the highest fidelity (among some candidates)."""
        return max(self.true[key][-1] for key in (self.true if among is None else among))


@dataclass
class Outcome:
    selection: Selection | None
    picked: str  # the candidate the procedure names (the recommendation where there is one)
    regret: float  # truly best accuracy among those evaluated − the picked one's (highest fidelity)
    spent: float  # training in candidate-epochs at the first rung's image count


def run_schedule(
    ladder: Ladder,
    objective: SimulatedObjective,
    sampled: Sequence[str],
    costs: Mapping[str, Costs],
    reference: str | None = None,
) -> Outcome:
    """The search's schedule on the simulated objective: ``sampled`` candidates at rung 0, then
    every later stage until the schedule is complete."""
    results: Results = {}
    spent: dict[str, float] = {}

    def evaluate(key: str, rung: int, seeds: Sequence[int], stage: str) -> None:
        found = results.setdefault(rung, {}).setdefault(key, {})
        for seed in seeds:
            if seed not in found:
                found[seed] = objective.accuracy(key, rung, seed)
                spent[stage] = spent.get(stage, 0.0) + ladder.fidelities[rung].cost(ladder.fidelities[0])

    for key in dict.fromkeys(sampled):
        count = ladder.reference_seed_count(0) if key == reference else ladder.seed_counts[0]
        evaluate(key, 0, ladder.seeds(count), "search")
    while True:
        stage, requests = ladder.pending(results, costs, reference)
        if stage is None:
            break
        for request in requests:
            evaluate(request.key, request.rung, request.seeds, stage)
    selection = select(ladder, results, costs, reference)
    assert selection.recommended is not None
    picked = selection.recommended
    return Outcome(
        selection,
        picked,
        objective.truly_best(results[0]) - objective.true[picked][-1],
        sum(spent.values()),
    )


def run_single_seed_optuna(
    objective: SimulatedObjective,
    candidates: Sequence[str],
    trials: int,
    rung: int,
    epochs_per_trial: float,
    seed: int = 0,
) -> Outcome:
    """Plain Optuna: TPE over the candidates, one training run (one fixed seed) per trial at
    ``rung``'s fidelity, and the best trial's candidate is the winner."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
        study.optimize(
            lambda t: objective.accuracy(t.suggest_categorical("candidate", list(candidates)), rung, 0),
            n_trials=trials,
        )
    picked = str(study.best_trial.params["candidate"])
    evaluated = {str(t.params["candidate"]) for t in study.trials}
    return Outcome(
        None,
        picked,
        objective.truly_best(evaluated) - objective.true[picked][-1],
        trials * epochs_per_trial,
    )


def example_space(
    rng: np.random.Generator, fidelities: int = 2, widths: Sequence[float] = (0.25, 0.5)
) -> tuple[dict[str, list[float]], dict[str, Costs], str]:
    """True accuracies shaped like proxy-signal.md's Fashion-MNIST measurements.  Per width: the
    plain backbone, ULSAM inserted (9 variants) and ULSAM replacing a layer (9 variants).  At the
    highest fidelity the wider network is 0.4 points better, insertions differ from plain by
    N(0, 0.2) points and replacements lose 0.25 ± 0.2; the cheapest rung inflates the width gap
    10× and rewards the shallower replacements by 1.1 points (they converge faster), with a
    N(0, 0.3) per-candidate bias.  Replacing saves 9% of the MACs, inserting adds 0.07%.
    Returns (true accuracies per rung, costs, the reference's key: the widest plain backbone)."""
    true: dict[str, list[float]] = {}
    costs: dict[str, Costs] = {}
    for w, width in enumerate(widths):
        base_macs = int(3_000_000 * width / widths[0])
        for variant in ["plain"] + [f"insert{i}" for i in range(9)] + [f"replace{i}" for i in range(9)]:
            key = Candidate.key_of(width, "" if variant == "plain" else variant)
            final = 0.86 + 0.004 * w
            proxy = final - 0.04 * (len(widths) - 1 - w) - 0.075 + 0.003 * rng.standard_normal()
            macs = base_macs
            if variant.startswith("insert"):
                final += 0.002 * rng.standard_normal()
                macs += base_macs * 7 // 10_000
            elif variant.startswith("replace"):
                final += -0.0025 + 0.002 * rng.standard_normal()
                proxy += 0.011
                macs -= base_macs * 9 // 100
            per_rung = [proxy] + [final - 0.01 * (fidelities - 1 - r) for r in range(1, fidelities)]
            true[key] = per_rung
            costs[key] = Costs(macs + len(true), (macs + len(true)) // 10)
    return true, costs, f"{widths[-1]:g}|"


@dataclass(frozen=True)
class StructuredTruth:
    """True accuracy of every configuration of a real search space (its closed-form costs, its
    parameters), with the structure a sampler can learn: smooth in width (concave, ``width_gain``
    from the narrowest to the widest), a module's effect smooth in its position (a bump of
    ``module_gain`` peaking mid-network, with a per-position wobble), a replaced layer costing
    ``replace_cost`` against an insert, and a small g effect (``g_gain`` per doubling up to
    g = 4, half that back per doubling beyond).  Additive, so the best feasible configuration is
    found exactly by enumerating the space."""

    parameters: ParameterSpace
    seed: int = 0
    width_gain: float = 0.03
    module_gain: float = 0.004
    replace_cost: float = 0.002
    g_gain: float = 0.001

    def __post_init__(self) -> None:
        object.__setattr__(self, "_tables", self._build())

    def tables(self) -> tuple[np.ndarray, np.ndarray]:
        """(accuracy of the plain network per width rank, change per (slot, option))."""
        tables: tuple[np.ndarray, np.ndarray] = object.__getattribute__(self, "_tables")
        return tables

    def _build(self) -> tuple[np.ndarray, np.ndarray]:
        space = self.parameters.space
        widths = np.asarray(space.width_mults, dtype=float)
        span = max(widths[-1] - widths[0], 1e-9)
        shape = (1 - np.exp(-3 * (widths - widths[0]) / span)) / (1 - math.exp(-3))
        base = 0.80 + self.width_gain * shape
        table = self.parameters.cost_table
        rng = np.random.default_rng((self.seed, 7))
        change = np.zeros(table.delta_macs.shape[1:], dtype=float)
        indices = [p.index for slot in table.slots for p in slot[1:2] if p is not None]
        low, high = (min(indices), max(indices)) if indices else (0, 1)
        for s, slot in enumerate(table.slots):
            wobble = 0.3 * self.module_gain * rng.standard_normal()
            for o, placement in enumerate(slot):
                if placement is None:
                    continue
                where = (placement.index - low) / max(1, high - low)
                effect = self.module_gain * math.sin(math.pi * where) + wobble
                if placement.action == "replace":
                    effect -= self.replace_cost
                g = placement.config.get("groups")
                if g:
                    doublings = math.log2(g)
                    effect += self.g_gain * min(doublings, 2) - 0.5 * self.g_gain * max(0.0, doublings - 2)
                change[s, o] = effect
        return base, change

    def accuracy(self, width_index: np.ndarray, choices: np.ndarray) -> np.ndarray:
        base, change = self.tables()
        slots = np.arange(choices.shape[1])[None, :]
        return base[width_index] + change[slots, choices].sum(axis=1)

    def best_feasible(self) -> float:
        """The highest true accuracy inside the budget (exhaustive over the space)."""
        parameters = self.parameters
        base, change = self.tables()
        best = -math.inf
        for widths, choices in parameters.enumerate():
            _, inside = parameters.costed(widths, choices)
            if inside.any():
                slots = np.arange(choices.shape[1])[None, :]
                found = base[widths[inside]] + change[slots, choices[inside]].sum(axis=1)
                best = max(best, float(found.max()))
        return best

    def of(self, width_mult: float, plan: str) -> float:
        """The true accuracy of one configuration (width, canonical plan)."""
        base, change = self.tables()
        space = self.parameters.space
        total = float(base[space.width_mults.index(width_mult)])
        slot_of = {
            p.index: s
            for s, slot in enumerate(self.parameters.cost_table.slots)
            for p in slot[1:2]
            if p is not None
        }
        for placement in parse_plan(plan):
            s = slot_of[placement.index]
            options = self.parameters.cost_table.slots[s]
            match = next(
                o
                for o, p in enumerate(options)
                if p is not None and (p.action, p.module, p.config.get("groups")) ==
                (placement.action, placement.module, placement.config.get("groups"))
            )  # fmt: skip
            total += float(change[s, match])
        return total
