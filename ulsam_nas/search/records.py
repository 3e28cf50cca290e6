"""What a trial records in the study's storage (written by ``candidate_record``, read by the
typed ``Record``), and the one definition of each thing read back from it: a search trial (drawn
by the sampler) against a requested evaluation (asked for by the fidelity schedule), a trial's
stage and rung, its seed lists, its owner, and the study's vanilla reference.

A trained trial's user attributes (the storage schema reports and older studies rely on):
``candidate`` "α|plan", ``plan``, ``width_mult``, ``backbone``, ``groups``, ``modules``,
``macs``, ``params``, ``macs_convention``; its fidelity ``rung``, ``fidelity`` {epochs,
images}, ``epochs``, ``images``, ``seed``; ``stage`` ("search", "rung r", "confirm" or
"calibration"), ``requested`` (set by the schedule), ``seeds_wanted``, ``reference``, ``owner``
{host, pid}; and once trained ``seeds``, ``accuracies`` (per seed), ``accuracy`` and
``accuracy_se`` (over seeds), ``trained_seeds``, ``reused_seeds`` {seed: trial},
``duplicate_of``, ``train_seconds``, ``trained_steps``, ``candidate_epochs``, ``latency_ms``
(measured), ``predicted_latency_ms`` (from the study's latency table),
``images_per_second``, ``over_budget``, ``validation_correct`` {seed: which validation images
the model got right, packed bits in base64}; for the confirmation's evaluations
``test_accuracies`` {seed: accuracy on the test part}, ``test_accuracy`` and
``test_accuracy_se``; ``baseline`` for the trials queued first (plain backbones, the paper's
plan) and ``surplus`` for a search trial that lost the race for the last slot and was failed
untrained.  A search trial the sampler drew outside the constraints records ``infeasible``
(the reasons), its cost where it has one, and trains nothing; it does not count toward the
``trials`` target.  Search trials and requested evaluations carry the configuration's
structured parameters (``parameters.ParameterSpace``), so the sampler learns from both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna

from ulsam_nas.networks.plan import plan_facts
from ulsam_nas.search.schedule import Costs, Ladder, Results

if TYPE_CHECKING:
    from ulsam_nas.search.problem import Problem
    from ulsam_nas.search.space import Candidate

SEARCH = "search"  # the stage of the sampler's trials and of the first rung's requested evaluations
REPLICATION = "replication"  # another study's recommendation evaluated here (replicate.py)
TESTED_STAGES = ("confirm", REPLICATION)  # evaluations that also score the test part
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)

Trials = Sequence[optuna.trial.FrozenTrial]


# -- the writer ----------------------------------------------------------------------------------
def candidate_record(problem: Problem, candidate: Candidate, rung: int) -> dict[str, Any]:
    """The attributes of an evaluation that do not depend on training."""
    fidelity = problem.config.ladder.fidelities[rung]
    return {
        "candidate": candidate.key,
        "plan": candidate.plan,
        "width_mult": candidate.width_mult,
        "backbone": problem.parameters.network.name,
        "groups": groups_of(candidate.plan),
        "modules": candidate.modules,
        "macs": candidate.macs,
        "params": candidate.params,
        "macs_convention": problem.config.budget.convention,
        **({"predicted_latency_ms": candidate.latency_ms} if candidate.latency_ms is not None else {}),
        "rung": rung,
        "fidelity": {"epochs": fidelity.epochs, "images": fidelity.images},
        "epochs": fidelity.epochs,
        "images": len(problem.data_for(rung).train_labels),
        "seed": problem.config.proxy.seed,
        "duplicate_of": None,
        "over_budget": False,
        **_where(problem, candidate),
    }


def _where(problem: Problem, candidate: Candidate) -> dict[str, str]:
    """A brought network's plan with module paths (``where``) and its width as the factory
    argument (``width_label``), for every report to show; a built-in's plan and α are already
    what a reader knows."""
    network = problem.parameters.network
    label = network.label(candidate.width_mult, candidate.plan)
    width = network.width_label(candidate.width_mult)
    return (
        {}
        if label == candidate.plan and width == f"α {candidate.width_mult:g}"
        else {"where": label, "width_label": width}
    )


# -- the readers ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Record:
    """A trial's user attributes, typed: what the readers outside this module use (``best``,
    reports, progress lines), each read here once with its default for an attribute a trial does
    not have (an untrained, infeasible or older trial)."""

    candidate: str | None = None
    costed: bool = False  # it records a buildable configuration's plan and cost (an infeasible draw may not)
    plan: str = ""
    where: str | None = None  # a brought network's plan with module paths
    stored_width_label: str | None = None  # a brought network's width as its factory argument
    width_mult: float | None = None
    backbone: str | None = None
    groups: int | None = None
    macs: int | None = None
    params: int | None = None
    rung: int = 0  # as the run that wrote it numbered its ladder (``rung_of`` maps it to this one)
    epochs: int | None = None
    fidelity_epochs: int | None = None
    fidelity_images: int | None = None
    seeds: tuple[int, ...] = ()
    accuracies: tuple[float, ...] = ()
    accuracy: float | None = None
    accuracy_se: float | None = None
    test_accuracy: float | None = None
    trained_seeds: tuple[int, ...] = ()
    trained_steps: int = 0
    candidate_epochs: float = 0.0
    train_seconds: float | None = None
    latency_ms: float | None = None  # measured after training, on the device that trained it
    predicted_latency_ms: float | None = None  # from the study's latency table
    over_budget: bool = False
    infeasible: tuple[str, ...] = ()
    baseline: bool = False
    duplicate_of: int | None = None
    seeds_wanted: tuple[int, ...] | None = None  # what a requested evaluation asks for
    surplus: bool = False

    @classmethod
    def of(cls, attrs: Mapping[str, Any]) -> Record:
        fidelity = attrs.get("fidelity") or {}
        return cls(
            candidate=attrs.get("candidate"),
            costed="plan" in attrs,
            plan=attrs.get("plan") or "",
            where=attrs.get("where"),
            stored_width_label=attrs.get("width_label"),
            width_mult=attrs.get("width_mult"),
            backbone=attrs.get("backbone"),
            groups=attrs.get("groups"),
            macs=attrs.get("macs"),
            params=attrs.get("params"),
            rung=int(attrs.get("rung", 0)),
            epochs=attrs.get("epochs"),
            fidelity_epochs=fidelity.get("epochs", attrs.get("epochs")),
            fidelity_images=fidelity.get("images"),
            seeds=tuple(attrs.get("seeds") or ()),
            accuracies=tuple(attrs.get("accuracies") or ()),
            accuracy=attrs.get("accuracy"),
            accuracy_se=attrs.get("accuracy_se"),
            test_accuracy=attrs.get("test_accuracy"),
            trained_seeds=tuple(attrs.get("trained_seeds") or ()),
            trained_steps=int(attrs.get("trained_steps") or 0),
            candidate_epochs=float(attrs.get("candidate_epochs") or 0.0),
            train_seconds=attrs.get("train_seconds"),
            latency_ms=attrs.get("latency_ms"),
            predicted_latency_ms=attrs.get("predicted_latency_ms"),
            over_budget=bool(attrs.get("over_budget")),
            infeasible=tuple(attrs.get("infeasible") or ()),
            baseline=bool(attrs.get("baseline")),
            duplicate_of=attrs.get("duplicate_of"),
            seeds_wanted=tuple(attrs["seeds_wanted"]) if "seeds_wanted" in attrs else None,
            surplus=bool(attrs.get("surplus")),
        )

    @property
    def shown_plan(self) -> str:
        """The plan as a reader knows it (a brought network's with module paths)."""
        return self.where if self.where is not None else self.plan

    @property
    def width_label(self) -> str:
        """The width as a reader knows it: ``α 0.28125``, or a brought network's ``width=12``."""
        return self.stored_width_label or f"α {self.width_mult or 0:g}"


def stage_of(attrs: dict[str, Any]) -> str:
    return str(attrs.get("stage", SEARCH))


def is_search_trial(attrs: dict[str, Any]) -> bool:
    """Drawn by the sampler and counted by the ``trials`` target; False for an evaluation the
    schedule requested (even one of the search stage, like the reference's first-rung seeds)."""
    return stage_of(attrs) == SEARCH and not attrs.get("requested")


def rung_of(attrs: dict[str, Any], ladder: Ladder) -> int | None:
    """Which rung of ``ladder`` a trial's fidelity is (None: none of them)."""
    fidelity = attrs.get("fidelity")
    if fidelity is None and attrs.get("epochs") == ladder.fidelities[0].epochs:
        return 0  # a trial from before schedules existed: the study's own proxy fidelity
    if not isinstance(fidelity, dict):
        return None
    for rung, candidate in enumerate(ladder.fidelities):
        if (candidate.epochs, candidate.images) == (fidelity.get("epochs"), fidelity.get("images")):
            return rung
    return None


def same_evaluation(attrs: dict[str, Any], key: str, rung: int, ladder: Ladder) -> bool:
    """The trial evaluates candidate ``key`` at ``rung``'s fidelity (its seeds can be reused)."""
    return attrs.get("candidate") == key and rung_of(attrs, ladder) == rung


def per_seed(attrs: dict[str, Any]) -> dict[int, float]:
    """A finished trial's ``seed -> accuracy`` (empty for an untrained, over-budget one)."""
    if attrs.get("over_budget") or not attrs.get("seeds") or attrs.get("accuracies") is None:
        return {}
    return {int(s): float(a) for s, a in zip(attrs["seeds"], attrs["accuracies"], strict=True)}


def test_per_seed(attrs: dict[str, Any]) -> dict[int, float]:
    """A trial's ``seed -> test accuracy`` where the test part was scored (else empty)."""
    return {int(s): float(a) for s, a in (attrs.get("test_accuracies") or {}).items()}


def collect_tests(trials: Trials, ladder: Ladder) -> dict[str, dict[int, float]]:
    """Each candidate's test accuracies at the highest fidelity, per seed (confirmation only)."""
    found: dict[str, dict[int, float]] = {}
    for trial in trials:
        attrs = trial.user_attrs
        if trial.state == optuna.trial.TrialState.COMPLETE and rung_of(attrs, ladder) == ladder.last:
            for seed, accuracy in test_per_seed(attrs).items():
                found.setdefault(attrs["candidate"], {}).setdefault(seed, accuracy)
    return found


def seeds_wanted(attrs: dict[str, Any]) -> set[int]:
    return {int(s) for s in attrs.get("seeds_wanted", [])}


def declared(attrs: dict[str, Any]) -> bool:
    """The trial has written what it evaluates: its seeds (written after its candidate and
    fidelity), or that it is an infeasible draw or a surplus one, which train nothing."""
    return "seeds_wanted" in attrs or is_infeasible(attrs) or bool(attrs.get("surplus"))


def owner_of(attrs: dict[str, Any]) -> dict[str, Any]:
    """{host, pid} of the worker that holds (or held) the trial; {} before it is written."""
    return dict(attrs.get("owner") or {})


def is_infeasible(attrs: dict[str, Any]) -> bool:
    """A draw outside the constraints, recorded untrained (not counted toward the target)."""
    return bool(attrs.get("infeasible"))


def counts_toward_target(attrs: dict[str, Any]) -> bool:
    """A search trial the ``trials`` target counts: drawn by the sampler and inside the
    constraints (trained, or a duplicate of a trained one)."""
    return is_search_trial(attrs) and not is_infeasible(attrs)


def search_trials_finished(trials: Trials) -> int:
    """Finished trials the sampler drew inside the constraints (the ``trials`` target)."""
    return sum(1 for t in trials if t.state in FINISHED and counts_toward_target(t.user_attrs))


def infeasible_draws(trials: Trials) -> int:
    return sum(1 for t in trials if t.state in FINISHED and is_infeasible(t.user_attrs))


def reference_of(trials: Trials, widest_plain: str | None) -> str | None:
    """The study's vanilla reference: the widest plain backbone inside the closed-form budget
    (``widest_plain``: stored in the study at creation, equal to ``ParameterSpace.widest_plain`` of any
    run the identity check admits), unless a trial found it over a measured (latency) budget."""
    if widest_plain is None:
        return None
    over = any(
        t.user_attrs.get("candidate") == widest_plain and t.user_attrs.get("over_budget") for t in trials
    )
    return None if over else widest_plain


def collect_results(trials: Trials, ladder: Ladder) -> tuple[Results, dict[str, Costs]]:
    """Per rung, every candidate's per-seed accuracies from the finished trials, and each
    candidate's exact cost (and the first measured latency)."""
    results: Results = {}
    costs: dict[str, Costs] = {}
    for trial in trials:
        if trial.state != optuna.trial.TrialState.COMPLETE or stage_of(trial.user_attrs) == REPLICATION:
            continue  # a replication evaluation belongs to the other study's question
        attrs = trial.user_attrs
        rung = rung_of(attrs, ladder)
        seeds = per_seed(attrs)
        if rung is None or not seeds:
            continue
        key = attrs["candidate"]
        found = results.setdefault(rung, {}).setdefault(key, {})
        for seed, accuracy in seeds.items():
            found.setdefault(seed, accuracy)
        if key not in costs or costs[key].latency_ms is None:
            predicted = attrs.get("predicted_latency_ms")
            costs[key] = Costs(attrs["macs"], attrs["params"], attrs.get("latency_ms"), predicted)
    return results, costs


def collect_replications(trials: Trials, ladder: Ladder) -> dict[str, dict[int, float]]:
    """Per candidate, the seed -> accuracy of its replication evaluations at the last rung."""
    found: dict[str, dict[int, float]] = {}
    for trial in trials:
        attrs = trial.user_attrs
        if (
            trial.state == optuna.trial.TrialState.COMPLETE
            and stage_of(attrs) == REPLICATION
            and rung_of(attrs, ladder) == ladder.last
        ):
            for seed, accuracy in per_seed(attrs).items():
                found.setdefault(attrs["candidate"], {}).setdefault(seed, accuracy)
    return found


def collect_correct(trials: Trials, ladder: Ladder) -> dict[tuple[int, str], dict[int, str]]:
    """(rung, candidate) -> seed -> which validation images its model got right (base64 bits)."""
    found: dict[tuple[int, str], dict[int, str]] = {}
    for trial in trials:
        attrs = trial.user_attrs
        rung = rung_of(attrs, ladder)
        if trial.state == optuna.trial.TrialState.COMPLETE and rung is not None:
            for seed, bits in (attrs.get("validation_correct") or {}).items():
                found.setdefault((rung, attrs["candidate"]), {}).setdefault(int(seed), bits)
    return found


def first_records(trials: Iterable[optuna.trial.FrozenTrial]) -> dict[str, dict[str, Any]]:
    """Each candidate's attributes from its first finished trial (what never changes: plan,
    width, cost); an infeasible draw has no record."""
    first: dict[str, dict[str, Any]] = {}
    for trial in trials:
        if trial.state == optuna.trial.TrialState.COMPLETE and "plan" in trial.user_attrs:
            first.setdefault(trial.user_attrs["candidate"], trial.user_attrs)
    return first


def groups_of(plan: str) -> int | None:
    """The group count g shared by every module of a plan that has one."""
    return plan_facts(plan).shared_groups
