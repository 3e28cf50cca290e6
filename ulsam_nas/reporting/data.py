"""What a report shows, read from a study's storage alone: the configuration the search stored,
every trial, each candidate's accuracy at each fidelity it reached, the selection (best, ties,
noise) and whether the study is still running.

Accuracies stay fractions and costs stay integers here; the figures and tables scale them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna
import pandas as pd

from ulsam_nas.networks.plan import plan_facts
from ulsam_nas.search.config import StudyConfig
from ulsam_nas.search.records import Record, stage_of
from ulsam_nas.search.results import StudyResults
from ulsam_nas.search.schedule import Costs, Ladder, Results, Selection, rung_summary
from ulsam_nas.search.space import Candidate
from ulsam_nas.search.storage import redact


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


def _candidate_columns(key: str, record: Record) -> dict[str, Any]:
    facts = plan_facts(record.plan)
    return {
        "candidate": key,
        "backbone": record.backbone,
        "width_mult": record.width_mult,
        "plan": record.plan,
        **({"where": record.where} if record.where is not None else {}),  # a brought network's
        "placement": facts.placement,
        "groups": facts.shared_groups,
        "groups_label": facts.groups_label,
        "modules": facts.modules,
        "macs": record.macs,
        "params": record.params,
    }


def _trial_rows(trials: list[optuna.trial.FrozenTrial]) -> list[dict[str, Any]]:
    rows = []
    for trial in trials:
        record = Record.of(trial.user_attrs)
        row: dict[str, Any] = {"trial": trial.number, "state": trial.state.name}
        if record.costed:
            row.update(_candidate_columns(str(record.candidate), record))
        elif record.candidate is not None:  # an infeasible draw: its key and cost where it has one
            row.update({"candidate": record.candidate, "macs": record.macs})
        row.update(
            {
                "stage": stage_of(trial.user_attrs),
                "epochs": record.fidelity_epochs,
                "images": record.fidelity_images,
                "over_budget": record.over_budget,
                "infeasible": "; ".join(record.infeasible),
                "baseline": record.baseline,
                "seeds": " ".join(str(s) for s in record.seeds),
                "accuracies": " ".join(f"{a:.4f}" for a in record.accuracies),
                "accuracy": None if record.over_budget else record.accuracy,
                "accuracy_se": record.accuracy_se,
                "test_accuracy": record.test_accuracy,
                "trained_seeds": " ".join(str(s) for s in record.trained_seeds),
                "latency_ms": record.latency_ms,
                "predicted_latency_ms": record.predicted_latency_ms,
                "train_seconds": record.train_seconds,
            }
        )
        rows.append(row)
    return rows


def _point_rows(
    view: StudyResults,
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
        for key in sorted(results[rung]):
            entry = rung_summary(view.ladder, results, key, rung)
            test = view.test_summary(key) if entry.stage == "confirm" else None
            rows.append(
                {
                    **_candidate_columns(key, Record.of(first[key])),
                    "rung": rung,
                    "seeds": len(entry.seeds),
                    "accuracy": entry.mean,
                    "accuracy_se": entry.se,
                    "test_accuracy": None if test is None else test[0],
                    "test_accuracy_se": None if test is None else test[1],
                    "latency_ms": costs[key].latency_ms,
                    "predicted_latency_ms": costs[key].predicted_ms,
                    "vanilla": Record.of(first[key]).plan == "",
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
    "test_accuracy",
    "test_accuracy_se",
    "latency_ms",
    "predicted_latency_ms",
    "vanilla",
    "reference",
    "status",
]


def load_study_data(study: optuna.Study, storage: str) -> StudyData:
    """Read everything a report needs from ``study`` (once); a study without one trained trial is
    invalid input (there is nothing to report)."""
    view = StudyResults.load(study, empty=": nothing to report")
    trials = pd.DataFrame(_trial_rows(view.trials))
    rows = _point_rows(view, view.results, view.costs, view.first, view.selection, view.reference)
    # A brought network's plans with module paths; a built-in study's columns stay as they were.
    where = ["where"] if any("where" in row for row in rows) else []
    points = pd.DataFrame(rows, columns=_POINT_COLUMNS[:4] + where + _POINT_COLUMNS[4:])
    over = trials[trials["over_budget"]].drop_duplicates("candidate") if len(trials) else trials
    pruned = trials[(trials["state"] == "PRUNED") & trials["accuracy"].notna()] if len(trials) else trials
    trained_keys = {key for per_rung in view.results.values() for key in per_rung}
    return StudyData(
        name=view.name,
        storage=redact(storage),
        config=view.config,
        ladder=view.ladder,
        network=view.network,
        data_text=str(view.user_attrs.get("data", view.config.proxy.data)),
        reference=view.reference,
        results=view.results,
        costs=view.costs,
        trials=trials,
        points=points,
        over_budget=over.reset_index(drop=True),
        pruned=pruned.reset_index(drop=True),
        selection=view.selection,
        best=view.best(top=len(trained_keys)),
        partial=view.partial(),
    )


def vanilla_key(width_mult: float) -> str:
    return Candidate.key_of(width_mult, "")
