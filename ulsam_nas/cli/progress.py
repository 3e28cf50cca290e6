"""How a running search shows itself: one tqdm bar per stage, or (``--quiet``) one plain line
per finished trial for logs.  Both read the trials the search loop has just read."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import optuna

from ulsam_nas.search.records import Record, stage_of
from ulsam_nas.search.worker import Progress


def progress_bars() -> Progress:
    """One tqdm bar per stage (search, then the schedule's rungs and confirmation)."""
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def update(stage: str, done: int, total: int, trials: Sequence[optuna.trial.FrozenTrial]) -> None:
        for name, other in bars.items():
            if name != stage and not other.disable:
                other.close()
                other.disable = True
        if stage not in bars:
            bars[stage] = tqdm(total=total, desc=stage, unit="trial", file=sys.stderr, dynamic_ncols=True)
        bar = bars[stage]
        bar.total = max(total, done)
        bar.n = min(done, bar.total)
        if stage == "search":
            records = [Record.of(t.user_attrs) for t in trials]
            accuracies = [
                r.accuracy for r in records if r.accuracy is not None and not r.over_budget and r.rung == 0
            ]
            infeasible = sum(bool(r.infeasible) for r in records)
            bar.set_postfix(best=f"{max(accuracies):.4f}" if accuracies else "-", infeasible=infeasible)
        bar.refresh()

    return update


def log_lines() -> Progress:
    """--quiet: one plain line per finished trial."""
    seen: set[int] = set()

    def update(stage: str, done: int, total: int, trials: Sequence[optuna.trial.FrozenTrial]) -> None:
        for trial in trials:
            if trial.number in seen or trial.state.name not in ("COMPLETE", "PRUNED"):
                continue
            seen.add(trial.number)
            print(trial_line(trial), file=sys.stderr)

    return update


def trial_line(trial: optuna.trial.FrozenTrial) -> str:
    record, stage = Record.of(trial.user_attrs), stage_of(trial.user_attrs)
    if record.infeasible and not record.over_budget:
        why = record.infeasible[0]
        return f"trial {trial.number} ({stage}) infeasible, not trained: {record.candidate}: {why}"
    accuracy, se = record.accuracy, record.accuracy_se
    return (
        f"trial {trial.number} ({stage}) {trial.state.name.lower()}: "
        f"accuracy {accuracy if accuracy is None else round(accuracy, 4)}"
        + (f" ± {se:.4f} ({len(record.seeds)} seeds)" if se is not None else "")
        + f", {record.epochs} epochs, "
        f"{(record.macs or 0) / 1e6:.3f} MMACs, {record.width_label}, "
        f"plan {record.shown_plan or '(none)'}"
        + (" [over budget, not trained]" if record.over_budget else "")
        + (f" [same as trial {record.duplicate_of}]" if record.duplicate_of is not None else "")
    )
