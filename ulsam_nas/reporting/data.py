"""What a report shows, read from a study's storage alone: the configuration the search stored,
every trial, each candidate's accuracy at each fidelity it reached, the selection (best, ties,
noise) and whether the study is still running.

Accuracies stay fractions and costs stay integers here; the figures and tables scale them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna
import pandas as pd

from ulsam_nas.backbones.plan import parse_plan
from ulsam_nas.errors import InvalidInput
from ulsam_nas.search.noise import summarize
from ulsam_nas.search.schedule import Costs, Ladder, Results, Selection, select
from ulsam_nas.search.space import Candidate
from ulsam_nas.search.study import (
    StudyConfig,
    best_candidates,
    collect_results,
    groups_of,
    redact,
    search_trials_finished,
    stored_config,
)

NO_MODULE = "none"  # the placement of a plain backbone


def placement_of(plan: str) -> str:
    """A plan without its modules' options: where modules go and which, e.g.
    "replace@9:ulsam,insert@13:ulsam" ("none" for the plain backbone)."""
    placements = parse_plan(plan)
    return ",".join(f"{p.action}@{p.index}:{p.module}" for p in placements) or NO_MODULE


def groups_label(plan: str) -> str:
    """ "g=4", "g=2/16" (per module, in plan order), or "" for a plan without groups."""
    groups = [p.config["groups"] for p in parse_plan(plan) if "groups" in p.config]
    return "g=" + "/".join(str(g) for g in groups) if groups else ""


@dataclass
class StudyData:
    name: str
    storage: str  # password redacted
    config: StudyConfig
    ladder: Ladder
    network: dict[str, Any]
    data_text: str  # the data set as the search described it
    reference: str | None  # the vanilla candidate whose seed spread states the noise
    results: Results
    costs: dict[str, Costs]
    trials: pd.DataFrame  # one row per trial, every state
    points: pd.DataFrame  # one row per (candidate, rung) with a trained accuracy
    over_budget: pd.DataFrame  # candidates recorded over the budget, never trained
    pruned: pd.DataFrame  # pruned trials at their last reported accuracy
    selection: Selection
    best: dict[str, Any]  # what ``ulsam-nas best --json`` prints
    partial: list[str]  # why the study is not finished; empty when it is

    @property
    def final_rung(self) -> int:
        return max(self.results)

    def fidelity_text(self, rung: int) -> str:
        return self.ladder.fidelities[rung].text()


def _candidate_columns(key: str, attrs: dict[str, Any]) -> dict[str, Any]:
    plan = attrs["plan"]
    return {
        "candidate": key,
        "backbone": attrs["backbone"],
        "width_mult": attrs["width_mult"],
        "plan": plan,
        "placement": placement_of(plan),
        "groups": groups_of(plan),
        "groups_label": groups_label(plan),
        "modules": len(parse_plan(plan)),
        "macs": attrs["macs"],
        "params": attrs["params"],
    }


def _trial_rows(study: optuna.Study) -> list[dict[str, Any]]:
    rows = []
    for trial in study.get_trials(deepcopy=False):
        attrs = trial.user_attrs
        row: dict[str, Any] = {"trial": trial.number, "state": trial.state.name}
        if "candidate" in attrs:
            row.update(_candidate_columns(attrs["candidate"], attrs))
        elif "candidate" in trial.params:
            row["candidate"] = trial.params["candidate"]
        fidelity = attrs.get("fidelity") or {}
        row.update(
            {
                "stage": attrs.get("stage", "search"),
                "epochs": fidelity.get("epochs", attrs.get("epochs")),
                "images": fidelity.get("images"),
                "over_budget": bool(attrs.get("over_budget")),
                "baseline": bool(attrs.get("baseline")),
                "seeds": " ".join(str(s) for s in attrs.get("seeds") or []),
                "accuracies": " ".join(f"{a:.4f}" for a in attrs.get("accuracies") or []),
                "accuracy": None if attrs.get("over_budget") else attrs.get("accuracy"),
                "accuracy_se": attrs.get("accuracy_se"),
                "trained_seeds": " ".join(str(s) for s in attrs.get("trained_seeds") or []),
                "latency_ms": attrs.get("latency_ms"),
                "train_seconds": attrs.get("train_seconds"),
            }
        )
        rows.append(row)
    return rows


def _point_rows(
    results: Results,
    costs: dict[str, Costs],
    first: dict[str, dict[str, Any]],
    selection: Selection,
    reference: str | None,
) -> list[dict[str, Any]]:
    status: dict[tuple[str, int], str] = {}
    for entry in selection.ranked:
        if entry.key == selection.best:
            status[(entry.key, entry.rung)] = "best" if selection.confirmed else "best (provisional)"
        elif entry.tied_with_best is not None:
            status[(entry.key, entry.rung)] = "tied with best" if entry.tied_with_best else "worse than best"
    rows = []
    for rung in sorted(results):
        for key, per_seed in sorted(results[rung].items()):
            summary = summarize([per_seed[s] for s in sorted(per_seed)])
            rows.append(
                {
                    **_candidate_columns(key, first[key]),
                    "rung": rung,
                    "seeds": summary.n,
                    "accuracy": summary.mean,
                    "accuracy_se": summary.se,
                    "latency_ms": costs[key].latency_ms,
                    "vanilla": first[key]["plan"] == "",
                    "reference": key == reference,
                    "status": status.get((key, rung), ""),
                }
            )
    return rows


_POINT_COLUMNS = [
    "candidate",
    "backbone",
    "width_mult",
    "plan",
    "placement",
    "groups",
    "groups_label",
    "modules",
    "macs",
    "params",
    "rung",
    "seeds",
    "accuracy",
    "accuracy_se",
    "latency_ms",
    "vanilla",
    "reference",
    "status",
]


def _partial(
    study: optuna.Study,
    data_config: StudyConfig,
    ladder: Ladder,
    results: Results,
    costs: dict[str, Costs],
    reference: str | None,
) -> list[str]:
    reasons = []
    busy = study.get_trials(
        deepcopy=False, states=(optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING)
    )
    if busy:
        reasons.append(f"{len(busy)} trial(s) running or queued (or left by a worker that died)")
    finished = search_trials_finished(study)
    if finished < data_config.trials:
        reasons.append(f"{finished} of {data_config.trials} search trials finished")
    else:
        stage, missing = ladder.pending(results, costs, reference)
        if stage is not None:
            reasons.append(f"stage {stage!r} has {len(missing)} evaluation(s) to run")
    return reasons


def load_study_data(study: optuna.Study, storage: str) -> StudyData:
    """Read everything a report needs from ``study``; a study without one trained trial is
    invalid input (there is nothing to report)."""
    config = stored_config(study)
    ladder = config.ladder
    results, costs = collect_results(study, ladder)
    if not results:
        raise InvalidInput(
            f"study {study.study_name!r} has no finished, trained trial yet: nothing to report"
        )
    reference = study.user_attrs.get("reference")
    selection = select(ladder, results, costs, reference)
    first: dict[str, dict[str, Any]] = {}
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        if "candidate" in trial.user_attrs:
            first.setdefault(trial.user_attrs["candidate"], trial.user_attrs)
    trials = pd.DataFrame(_trial_rows(study))
    points = pd.DataFrame(_point_rows(results, costs, first, selection, reference), columns=_POINT_COLUMNS)
    over = trials[trials["over_budget"]].drop_duplicates("candidate") if len(trials) else trials
    pruned = trials[(trials["state"] == "PRUNED") & trials["accuracy"].notna()] if len(trials) else trials
    trained_keys = {key for per_rung in results.values() for key in per_rung}
    best = best_candidates(study, top=len(trained_keys))
    return StudyData(
        name=study.study_name,
        storage=redact(storage),
        config=config,
        ladder=ladder,
        network=dict(study.user_attrs.get("network", {})),
        data_text=str(study.user_attrs.get("data", config.proxy.data)),
        reference=reference,
        results=results,
        costs=costs,
        trials=trials,
        points=points,
        over_budget=over.reset_index(drop=True),
        pruned=pruned.reset_index(drop=True),
        selection=selection,
        best=best,
        partial=_partial(study, config, ladder, results, costs, reference),
    )


def vanilla_key(width_mult: float) -> str:
    return Candidate.key_of(width_mult, "")
