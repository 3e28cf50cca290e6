"""The fidelity schedule: which candidate to train at which fidelity with which seeds, and what
the finished evaluations say (best, ties, recommendation, noise).

Stages, in order (each starts when the previous one is complete):

* ``search`` (rung 0): Optuna samples feasible candidates, each trained at the cheapest fidelity
  (``proxy.epochs`` × ``proxy.train_images``) with ``proxy.seeds`` seeds.
* ``rung r`` (r = 1..R, ``schedule.rungs``): successive halving — the best ⌈n/η⌉ candidates of
  rung r−1 (at least ``confirm.top_k``), ranked by their mean over rung r−1's seeds, are trained
  at rung r's epochs, images and seeds.
* ``confirm``: the top k of the last rung are re-evaluated at that (the highest) fidelity with at
  least 5 paired seeds.  Only confirmed candidates can be called best.

The vanilla reference (the widest plain backbone inside the budget) is trained at every rung with
at least ``reference_seeds`` seeds, so the study states its seed noise at each fidelity.
Seeds are the same for every candidate (``proxy.seed`` + 0, 1, 2, …), so comparisons are paired;
a rung's ranking uses exactly that rung's seed list, so later seeds never reshuffle a finished
stage.  This module is pure (no Optuna, no training): the search and the simulated-objective
tests and benchmark drive the same functions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ulsam_nas.search.noise import (
    TEST_NAME,
    PairedComparison,
    detectable_difference,
    paired_comparison,
    pooled_sd,
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


class Confirm(_Strict):
    top_k: int = Field(default=3, ge=1)
    seeds: int = Field(default=5, ge=5)


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
    latency_ms: float | None = None

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
        return cls(
            tuple(rungs),
            (seeds, *(r.seeds for r in schedule.rungs)),
            base_seed,
            schedule.reduction_factor,
            schedule.confirm.top_k,
            schedule.confirm.seeds,
            schedule.reference_seeds,
            multi_objective,
        )

    @property
    def last(self) -> int:
        return len(self.fidelities) - 1

    def seeds(self, count: int) -> tuple[int, ...]:
        return tuple(self.base_seed + i for i in range(count))

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
            top = self.rank(results, self.last, costs)[: self.top_k]
            count = max(self.confirm_seeds, self.seed_counts[self.last])
            return [Request(key, self.last, self.seeds(count), name) for key in top]
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

    def tolerance(self) -> float | None:
        """How far below the best the recommendation may truly be, as the study states it."""
        bounds = [b for b in (self.tie_band, self.detectable) if b is not None]
        return max(bounds) if bounds else None


def select(
    ladder: Ladder, results: Results, costs: Mapping[str, Costs], reference: str | None = None
) -> Selection:
    """Rank every evaluated candidate by the highest rung it reached (then its mean there), name
    the best among the contenders (the confirmed top k, else the last rung's candidates), mark
    the contenders tied with it, and recommend the cheapest tied one (MACs, then latency)."""
    ranked: list[Ranked] = []
    names = ladder.stage_names()
    confirm_seeds = set(ladder.seeds(ladder.confirm_seeds))
    for key in {k for per_rung in results.values() for k in per_rung}:
        rung = max(r for r, per_rung in results.items() if key in per_rung)
        found = results[rung][key]
        seeds = tuple(sorted(found))
        summary = summarize([found[s] for s in seeds])
        is_confirmed = ladder.top_k is not None and rung == ladder.last and confirm_seeds <= set(found)
        stage = "confirm" if is_confirmed else names[rung]
        ranked.append(
            Ranked(key, rung, stage, seeds, tuple(found[s] for s in seeds), summary.mean, summary.se)
        )
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
