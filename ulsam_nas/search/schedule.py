"""The fidelity schedule: which candidate to train at which fidelity with which seeds, and what
the finished evaluations say (best, ties, recommendation, noise).

Stages, in order (each starts when the previous one is complete):

* ``search`` (rung 0): Optuna samples feasible candidates, each trained at the cheapest fidelity
  (``proxy.epochs`` × ``proxy.train_images``) with ``proxy.seeds`` seeds.
* ``rung r`` (r = 1..R, ``schedule.rungs``): successive halving — the best ⌈n/η⌉ candidates of
  rung r−1 (at least ``confirm.top_k``), ranked by their mean over rung r−1's seeds, are trained
  at rung r's epochs, images and seeds.
* ``confirm``: the top k of the last rung and the vanilla reference are evaluated at that (the
  highest) fidelity with at least 5 *fresh* paired seeds (``proxy.seed`` + 1000 + 0, 1, …): a
  candidate promoted because its earlier seeds scored high would carry that luck into a
  confirmation that reused them.  With a ``target``, seeds are added (up to ``max_seeds``)
  until the final stage detects a difference of that size, from the paired differences
  measured so far.  Only confirmed candidates can be called best, and only the confirmation's
  seeds say how good they are.

The vanilla reference (the widest plain backbone inside the budget) is trained at every rung with
at least ``reference_seeds`` seeds, so the study states its seed noise at each fidelity, and is a
contender in the confirmation: "ULSAM at α, or the plain network at the widest α' that fits?"
is answered with a paired interval.  Seeds are the same for every candidate, so comparisons are
paired; a rung's ranking uses exactly that rung's seed list, so later seeds never reshuffle a
finished stage.  This module is pure (no Optuna, no training): the search and the
simulated-objective tests and benchmark drive the same functions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ulsam_nas.search.noise import (
    TEST_NAME,
    PairedComparison,
    detectable_difference,
    paired_comparison,
    pooled_sd,
    seeds_needed,
    summarize,
)

# rung -> candidate key -> seed -> accuracy (fraction)
Results = dict[int, dict[str, dict[int, float]]]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Rung(_Strict):
    epochs: int = Field(ge=1)
    images: int | None = Field(default=None, ge=1)  # None: every training image
    seeds: int = Field(default=1, ge=1)


CONFIRM_SEED_OFFSET = 1000  # the confirmation's seeds: proxy.seed + 1000 + 0, 1, ...


class Confirm(_Strict):
    top_k: int = Field(default=3, ge=1)
    seeds: int = Field(default=5, ge=5)  # fresh paired seeds per contender
    # Points: add seeds until the final stage detects a difference this small (up to max_seeds).
    target: float | None = Field(default=None, gt=0)
    max_seeds: int | None = Field(default=None, ge=5)
    # Points: the paired-difference sd expected at the final fidelity, as measured on this data
    # (benchmarks/proxy.py, ulsam-nas calibrate); --dry-run states the detectable difference it
    # implies before anything is trained.
    expected_sd: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _enough_room(self) -> Confirm:
        if self.max_seeds is not None and self.max_seeds < self.seeds:
            raise ValueError(f"max_seeds {self.max_seeds} is below seeds {self.seeds}")
        return self


class ScheduleConfig(_Strict):
    """The ``schedule:`` section of a study file (rungs after the search's own first rung)."""

    rungs: list[Rung] = Field(default_factory=list)
    reduction_factor: int = Field(default=3, ge=2)
    confirm: Confirm = Confirm()
    reference_seeds: int = Field(default=3, ge=2)


@dataclass(frozen=True)
class Fidelity:
    epochs: int
    images: int | None

    def cost(self, base: Fidelity) -> float:
        """Training cost of one seed relative to one epoch at the base fidelity's image count."""
        if self.images is None or base.images is None:
            return float(self.epochs)
        return self.epochs * self.images / base.images

    def text(self) -> str:
        images = "all" if self.images is None else f"{self.images:,}"
        return f"{self.epochs} epochs × {images} images"


@dataclass(frozen=True)
class Request:
    key: str
    rung: int
    seeds: tuple[int, ...]
    stage: str

    def missing(self, results: Results) -> tuple[int, ...]:
        known = results.get(self.rung, {}).get(self.key, {})
        return tuple(s for s in self.seeds if s not in known)


@dataclass(frozen=True)
class Costs:
    macs: int
    params: int
    latency_ms: float | None = None  # measured after training
    predicted_ms: float | None = None  # from the study's latency table

    def order(self) -> tuple[int, float]:
        return (self.macs, self.latency_ms if self.latency_ms is not None else math.inf)


@dataclass(frozen=True)
class Ladder:
    """A resolved schedule: every rung's fidelity and seed count, and the confirmation."""

    fidelities: tuple[Fidelity, ...]
    seed_counts: tuple[int, ...]
    base_seed: int = 0
    reduction_factor: int = 3
    top_k: int | None = None  # None: no confirmation stage
    confirm_seeds: int = 5
    reference_seeds: int = 1
    multi_objective: bool = False
    confirm_target: float | None = None  # fraction (0.005 = 0.5 points)
    confirm_max_seeds: int | None = None
    expected_sd: float | None = None  # fraction

    @classmethod
    def build(
        cls,
        epochs: int,
        images: int | None,
        seeds: int,
        base_seed: int,
        schedule: ScheduleConfig | None,
        multi_objective: bool = False,
    ) -> Ladder:
        if schedule is None:
            return cls(((Fidelity(epochs, images)),), (seeds,), base_seed, multi_objective=multi_objective)
        rungs = [Fidelity(epochs, images)] + [Fidelity(r.epochs, r.images) for r in schedule.rungs]
        confirm = schedule.confirm
        return cls(
            tuple(rungs),
            (seeds, *(r.seeds for r in schedule.rungs)),
            base_seed,
            schedule.reduction_factor,
            confirm.top_k,
            confirm.seeds,
            schedule.reference_seeds,
            multi_objective,
            None if confirm.target is None else confirm.target / 100,
            confirm.max_seeds,
            None if confirm.expected_sd is None else confirm.expected_sd / 100,
        )

    @property
    def last(self) -> int:
        return len(self.fidelities) - 1

    def seeds(self, count: int) -> tuple[int, ...]:
        return tuple(self.base_seed + i for i in range(count))

    def confirm_seed_list(self, count: int) -> tuple[int, ...]:
        return tuple(self.base_seed + CONFIRM_SEED_OFFSET + i for i in range(count))

    def is_confirm_seed(self, seed: int) -> bool:
        return seed >= self.base_seed + CONFIRM_SEED_OFFSET

    def confirm_contenders(
        self, results: Results, costs: Mapping[str, Costs], reference: str | None
    ) -> list[str]:
        """The confirmation's candidates: the top k of the last rung, and the reference."""
        top = self.rank(results, self.last, costs)[: self.top_k]
        return top + ([reference] if reference is not None and reference not in top else [])

    def confirm_count(self, results: Results, contenders: Sequence[str]) -> int:
        """How many confirmation seeds each contender needs now: ``confirm_seeds``, or, with a
        target, as many as the paired differences measured so far say the target takes (up
        to ``confirm_max_seeds``; an internal-pilot sample size, re-estimated once the current
        seeds are all in)."""
        count = self.confirm_seeds
        if self.confirm_target is None or len(contenders) < 2:
            return count
        per = {key: confirm_results(self, results.get(self.last, {}).get(key, {})) for key in contenders}
        have = min(len(found) for found in per.values())
        if have < count:
            return count
        _, sd = contender_differences(per)
        if sd is None or detectable_difference(sd, have) <= self.confirm_target:
            return have
        wanted = seeds_needed(sd, self.confirm_target) if sd > 0 else have
        return max(have, min(self.confirm_max_seeds or have, max(have + 1, wanted)))

    def stage_names(self) -> list[str]:
        names = ["search"] + [f"rung {r}" for r in range(1, len(self.fidelities))]
        return names + (["confirm"] if self.top_k else [])

    def reference_seed_count(self, rung: int) -> int:
        return max(self.seed_counts[rung], self.reference_seeds)

    def rank(self, results: Results, rung: int, costs: Mapping[str, Costs]) -> list[str]:
        """Candidates with every seed of ``rung``'s list, best first (mean over exactly those seeds;
        multi-objective: non-dominated fronts of accuracy against MACs, then accuracy)."""
        seeds = self.seeds(self.seed_counts[rung])
        means = {
            key: sum(found[s] for s in seeds) / len(seeds)
            for key, found in results.get(rung, {}).items()
            if all(s in found for s in seeds)
        }
        order = sorted(means, key=lambda k: (-means[k], costs[k].order(), k))
        if not self.multi_objective:
            return order
        ranked: list[str] = []
        remaining = order
        while remaining:
            front = [
                k
                for k in remaining
                if not any(
                    means[o] >= means[k]
                    and costs[o].macs <= costs[k].macs
                    and (means[o] > means[k] or costs[o].macs < costs[k].macs)
                    for o in remaining
                )
            ]
            ranked += front
            remaining = [k for k in remaining if k not in front]
        return ranked

    def stage_requests(
        self, stage: int, results: Results, costs: Mapping[str, Costs], reference: str | None
    ) -> list[Request]:
        """What stage ``stage`` (an index into ``stage_names``) must have evaluated; the earlier
        stages must be complete."""
        name = self.stage_names()[stage]
        wanted: list[Request] = []
        if stage == 0:
            if reference is not None:
                wanted.append(Request(reference, 0, self.seeds(self.reference_seed_count(0)), name))
            return wanted
        if name == "confirm":
            contenders = self.confirm_contenders(results, costs, reference)
            seeds = self.confirm_seed_list(self.confirm_count(results, contenders))
            return [Request(key, self.last, seeds, name) for key in contenders]
        ranked = self.rank(results, stage - 1, costs)
        keep = max(self.top_k or 1, math.ceil(len(ranked) / self.reduction_factor))
        for key in ranked[:keep]:
            count = self.reference_seed_count(stage) if key == reference else self.seed_counts[stage]
            wanted.append(Request(key, stage, self.seeds(count), name))
        if reference is not None and reference not in ranked[:keep]:
            wanted.append(Request(reference, stage, self.seeds(self.reference_seed_count(stage)), name))
        return wanted

    def pending(
        self, results: Results, costs: Mapping[str, Costs], reference: str | None
    ) -> tuple[str | None, list[Request]]:
        """The first stage with unfinished evaluations and those evaluations; (None, []) when
        the schedule is complete.  Call it once the search stage's trials are finished."""
        for stage, name in enumerate(self.stage_names()):
            missing = [r for r in self.stage_requests(stage, results, costs, reference) if r.missing(results)]
            if missing:
                return name, missing
        return None, []


@dataclass
class Ranked:
    key: str
    rung: int  # the highest rung it was evaluated at
    stage: str
    seeds: tuple[int, ...]
    accuracies: tuple[float, ...]
    mean: float
    se: float | None
    comparison: PairedComparison | None = None  # best − this, over common seeds

    @property
    def tied_with_best(self) -> bool | None:
        return None if self.comparison is None else self.comparison.tied


@dataclass
class Selection:
    ranked: list[Ranked]
    best: str | None
    recommended: str | None
    contenders: list[str]
    confirmed: bool
    noise: list[dict[str, Any]] = field(default_factory=list)
    detectable: float | None = None
    # The largest |bound| of the 95% intervals of the candidates tied with the best: "tied within ±…".
    tie_band: float | None = None
    notes: list[str] = field(default_factory=list)
    reference: str | None = None
    # The recommendation − the reference over their common confirmation seeds (the width
    # trade-off: "ULSAM at α, or the plain network at the widest α' that fits?").
    versus_reference: PairedComparison | None = None

    def tolerance(self) -> float | None:
        """How far below the best the recommendation may truly be, as the study states it."""
        bounds = [b for b in (self.tie_band, self.detectable) if b is not None]
        return max(bounds) if bounds else None


def confirm_results(ladder: Ladder, found: Mapping[int, float]) -> dict[int, float]:
    """A candidate's accuracies on the confirmation's fresh seeds only."""
    return {seed: accuracy for seed, accuracy in found.items() if ladder.is_confirm_seed(seed)}


def contender_differences(per: Mapping[str, Mapping[int, float]]) -> tuple[str | None, float | None]:
    """The contender with the highest mean, and the pooled sd of every other contender's paired
    differences to it (None without two common seeds)."""
    means = {key: sum(found.values()) / len(found) for key, found in per.items() if found}
    if not means:
        return None, None
    best = max(sorted(means), key=lambda key: means[key])
    comparisons = [paired_comparison(per[best], per[key]) for key in per if key != best]
    usable = [c for c in comparisons if c.se is not None and c.n >= 2]
    return best, (pooled_sd_of_differences(usable) if usable else None)


def _ranked(ladder: Ladder, results: Results, key: str, rung: int | None = None) -> Ranked:
    """A candidate at ``rung`` (default: the highest it reached): over the confirmation's seeds
    once it has all of them, else over that rung's own seeds."""
    if rung is None:
        rung = max(r for r, per_rung in results.items() if key in per_rung)
    found = results[rung][key]
    confirmed = confirm_results(ladder, found) if ladder.top_k is not None and rung == ladder.last else {}
    stage = "confirm" if len(confirmed) >= ladder.confirm_seeds else ladder.stage_names()[rung]
    if stage != "confirm":
        confirmed = {s: a for s, a in found.items() if not ladder.is_confirm_seed(s)} or dict(found)
    seeds = tuple(sorted(confirmed))
    summary = summarize([confirmed[s] for s in seeds])
    return Ranked(key, rung, stage, seeds, tuple(confirmed[s] for s in seeds), summary.mean, summary.se)


def rung_summary(ladder: Ladder, results: Results, key: str, rung: int) -> Ranked:
    """What a candidate scored at one rung, as the selection counts it."""
    return _ranked(ladder, results, key, rung)


def select(
    ladder: Ladder, results: Results, costs: Mapping[str, Costs], reference: str | None = None
) -> Selection:
    """Rank every evaluated candidate by the highest rung it reached (then its mean there), name
    the best among the contenders (the confirmed ones, else the last rung's candidates), mark
    the contenders tied with it, and recommend the cheapest tied one (MACs, then latency)."""
    keys = {k for per_rung in results.values() for k in per_rung}
    ranked = [_ranked(ladder, results, key) for key in keys]
    ranked.sort(key=lambda r: (-r.rung, r.stage != "confirm", -r.mean, costs[r.key].order(), r.key))
    if not ranked:
        return Selection([], None, None, [], False, notes=["no candidate has been evaluated yet"])
    confirmed = [r for r in ranked if r.stage == "confirm"]
    notes = []
    if confirmed:
        contenders = confirmed
    else:
        top_rung = ranked[0].rung
        contenders = [r for r in ranked if r.rung == top_rung]
        notes.append(
            "no candidate is confirmed (no confirmation stage in this study, or it has not run yet): "
            "the best is provisional"
        )
    best = contenders[0]
    for entry in contenders[1:]:
        entry.comparison = paired_comparison(
            dict(zip(best.seeds, best.accuracies, strict=True)),
            dict(zip(entry.seeds, entry.accuracies, strict=True)),
        )
    if len(best.seeds) < 2:
        notes.append("one seed per candidate: no tie can be judged")
    tied = [best] + [r for r in contenders[1:] if r.tied_with_best]
    recommended = min(tied, key=lambda r: (costs[r.key].order(), -r.mean, r.key))
    selection = Selection(
        ranked, best.key, recommended.key, [r.key for r in contenders], bool(confirmed), notes=notes
    )
    selection.noise = noise_by_rung(ladder, results, reference)
    bands = [
        max(abs(r.comparison.ci_low), abs(r.comparison.ci_high))
        for r in tied[1:]
        if r.comparison is not None and r.comparison.ci_low is not None and r.comparison.ci_high is not None
    ]
    selection.tie_band = max(bands) if bands else None
    differences = [
        r.comparison
        for r in contenders[1:]
        if r.comparison is not None and r.comparison.se is not None and r.comparison.n >= 2
    ]
    if differences:
        sd = pooled_sd_of_differences(differences)
        selection.detectable = detectable_difference(sd, min(d.n for d in differences))
    elif selection.noise[best.rung]["reference_sd"] is not None:
        # No paired differences yet: two independent arms with the reference's seed spread.
        spread = selection.noise[best.rung]["reference_sd"]
        selection.detectable = detectable_difference(math.sqrt(2) * spread, len(best.seeds))
    by_key = {r.key: r for r in contenders}
    selection.reference = reference
    if reference in by_key and recommended.key != reference:
        ours, theirs = by_key[recommended.key], by_key[reference]
        selection.versus_reference = paired_comparison(
            dict(zip(ours.seeds, ours.accuracies, strict=True)),
            dict(zip(theirs.seeds, theirs.accuracies, strict=True)),
        )
    return selection


def pooled_sd_of_differences(comparisons: Sequence[PairedComparison]) -> float:
    """Pooled sd of the per-seed differences, from each comparison's SE and n."""
    squares = sum((c.se or 0.0) ** 2 * c.n * (c.n - 1) for c in comparisons)
    dof = sum(c.n - 1 for c in comparisons)
    return math.sqrt(squares / dof)


def noise_by_rung(ladder: Ladder, results: Results, reference: str | None) -> list[dict[str, Any]]:
    """Per rung: the reference's seed spread and the pooled within-candidate spread."""
    rows = []
    for rung, fidelity in enumerate(ladder.fidelities):
        per_rung = results.get(rung, {})
        ref = per_rung.get(reference or "", {})
        ref_summary = summarize(list(ref.values())) if ref else None
        pooled, dof = pooled_sd([list(v.values()) for v in per_rung.values()])
        rows.append(
            {
                "rung": rung,
                "epochs": fidelity.epochs,
                "images": fidelity.images,
                "reference": reference,
                "reference_seeds": len(ref),
                "reference_mean": ref_summary.mean if ref_summary else None,
                "reference_sd": ref_summary.sd if ref_summary else None,
                "pooled_sd": pooled,
                "pooled_dof": dof,
            }
        )
    return rows


def tie_sentence(selection: Selection, label: Mapping[str, str], costs: Mapping[str, Costs]) -> str:
    """The recommendation in plain words, e.g. "g=4 and g=16 are tied within ±0.6 points; ..."."""
    if selection.best is None or selection.recommended is None:
        return "no candidate has been evaluated yet"
    by_key = {r.key: r for r in selection.ranked}
    best = by_key[selection.best]
    if len(best.seeds) < 2:
        return (
            f"{label[best.key]} scored highest ({best.mean:.2%}) with one seed: no tie can be judged; "
            "run more seeds (--seeds, or a schedule with a confirmation stage)"
        )
    tied = [by_key[k] for k in selection.contenders[1:] if by_key[k].tied_with_best]
    if not tied:
        return (
            f"{label[best.key]} is best ({best.mean:.2%} ± {best.se or 0:.2%} over {len(best.seeds)} seeds) "
            f"and no other contender is tied with it ({TEST_NAME}, 95% interval)"
        )
    names = [label[best.key]] + [label[r.key] for r in tied]
    band = selection.tie_band or 0.0
    text = f"{_join(names)} are tied within ±{band * 100:.1f} points ({TEST_NAME}, 95% interval)"
    recommended = by_key[selection.recommended]
    if recommended.key == best.key:
        return text + f"; {label[best.key]} is also the cheapest of them"
    saved = costs[best.key].macs - costs[recommended.key].macs
    detail = (
        f"costs {saved / 1e6:.3g} MMACs less" if saved > 0 else "is as cheap in MACs and has lower latency"
    )
    return text + f"; {label[recommended.key]} {detail} than {label[best.key]}: recommended"


def _join(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
