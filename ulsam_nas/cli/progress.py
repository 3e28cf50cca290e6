"""How a running search shows itself: one tqdm bar per stage, or (``--quiet``) one plain line
per finished trial for logs.  Both read the trials the search loop has just read."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import optuna

from ulsam_nas.search.records import stage_of
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
            accuracies = [
                t.user_attrs["accuracy"]
                for t in trials
                if t.user_attrs.get("accuracy") is not None
                and not t.user_attrs.get("over_budget")
                and t.user_attrs.get("rung", 0) == 0
            ]
            infeasible = sum(bool(t.user_attrs.get("infeasible")) for t in trials)
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
    attrs = trial.user_attrs
    if attrs.get("infeasible") and not attrs.get("over_budget"):
        return (
            f"trial {trial.number} ({stage_of(attrs)}) infeasible, not trained: "
            f"{attrs.get('candidate')}: {attrs['infeasible'][0]}"
        )
    accuracy, se = attrs.get("accuracy"), attrs.get("accuracy_se")
    seeds = attrs.get("seeds") or []
    return (
        f"trial {trial.number} ({stage_of(attrs)}) {trial.state.name.lower()}: "
        f"accuracy {accuracy if accuracy is None else round(accuracy, 4)}"
        + (f" ± {se:.4f} ({len(seeds)} seeds)" if se is not None else "")
        + f", {attrs.get('epochs')} epochs, "
        f"{attrs.get('macs', 0) / 1e6:.3f} MMACs, α {attrs.get('width_mult')}, "
        f"plan {attrs.get('where', attrs.get('plan')) or '(none)'}"
        + (" [over budget, not trained]" if attrs.get("over_budget") else "")
        + (f" [same as trial {attrs['duplicate_of']}]" if attrs.get("duplicate_of") is not None else "")
    )
