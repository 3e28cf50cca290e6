"""Which choices move accuracy, estimated from every trained trial of one fidelity: the paper's
g ablation and placement table, computed from all trials instead of pairwise comparisons of a few.

A linear model of accuracy over (candidate, seed) observations, blocked on seed (each seed its
own intercept: paired candidates share their seed's luck), with these factors:

* ``width`` — each width against the narrowest trained one (levels, no shape assumed);
* ``modules`` — per attention module added, or swapped in for a block's own SE (at the first
  position of the space that has one);
* ``replace`` — a module replacing its layer instead of following it, per module (where the
  trials insert or replace);
* ``remove`` — a block's own SE removed, per block (where a trial removes one);
* ``position`` — a module at layer i against one at the first position;
* ``module`` — where the space offers several modules, each against the first;
* ``g`` — per doubling of a module's group count (g as ordered levels: log2 g).

Estimates are ordinary least squares with 95% t intervals (accuracies as fractions); an effect
is *resolved* when its interval excludes 0.  Factors the data cannot separate (a column that
adds no rank: every candidate with the same width, say) are listed as not estimable.  Beside
it, Optuna's PED-ANOVA importance of the sampler's always-present parameters.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from scipy import stats

from ulsam_nas.networks.plan import REMOVE, parse_plan

LEVEL = 0.95


@dataclass(frozen=True, eq=False)
class Column:
    factor: str
    level: str
    values: np.ndarray


def design(
    observations: Sequence[tuple[float, str, int]],
    positions: Sequence[int],
    modules: Sequence[str],
    names: Mapping[int, str] | None = None,
    width_label: Callable[[float], str] = lambda w: f"α {w:g}",
) -> list[Column]:
    """The factor columns for observations (width, plan, seed); ``names``: how a position is
    called (a brought network's module path), where not ``layer INDEX``; ``width_label``: how a
    width reads (``α 0.5``, a brought network's ``width=12``)."""
    names = names or {}
    widths = sorted({w for w, _, _ in observations})
    placements = [parse_plan(plan) for _, plan, _ in observations]
    columns = [
        Column(
            "width", f"{width_label(w)} vs {widths[0]:g}", np.array([float(o[0] == w) for o in observations])
        )
        for w in widths[1:]
    ]
    modules_placed = [[x for x in p if x.module != REMOVE] for p in placements]
    columns.append(Column("modules", "per module", np.array([float(len(p)) for p in modules_placed])))
    removed = np.array([float(sum(x.module == REMOVE for x in p)) for p in placements])
    if removed.any():
        columns.append(Column("remove", "a block's own SE removed, per block", removed))
    if any(x.action in ("insert", "replace") for p in placements for x in p):  # not in a swap-only space
        columns.append(
            Column(
                "replace",
                "replace instead of insert, per module",
                np.array([float(sum(x.action == "replace" for x in p)) for p in placements]),
            )
        )
    used = sorted({x.index for p in placements for x in p} | set(positions[:1]))
    first = positions[0] if positions else (used[0] if used else 0)
    for index in used:
        if index != first:
            columns.append(
                Column(
                    "position",
                    f"at {names.get(index, f'layer {index}')} vs {names.get(first, first)}",
                    np.array([float(sum(x.index == index for x in p)) for p in placements]),
                )
            )
    for module in modules[1:]:
        columns.append(
            Column(
                "module",
                f"{module} vs {modules[0]}",
                np.array([float(sum(x.module == module for x in p)) for p in placements]),
            )
        )
    columns.append(
        Column(
            "g",
            "per doubling",
            np.array(
                [sum(math.log2(x.config["groups"]) for x in p if "groups" in x.config) for p in placements]
            ),
        )
    )
    return columns


def estimate_effects(
    observations: Sequence[tuple[float, str, int, float]],
    positions: Sequence[int] = (),
    modules: Sequence[str] = ("ulsam",),
    level: float = LEVEL,
    names: Mapping[int, str] | None = None,
    width_label: Callable[[float], str] = lambda w: f"α {w:g}",
) -> list[dict[str, Any]]:
    """Each factor's effect on accuracy from observations (width, plan, seed, accuracy): a list
    of {factor, level, estimate, ci_low, ci_high, n, resolved} (fractions; None where the data
    cannot estimate it or leaves no degrees of freedom for an interval)."""
    if not observations:
        return []
    y = np.array([o[3] for o in observations], dtype=float)
    seeds = sorted({o[2] for o in observations})
    blocks = [np.array([float(o[2] == s) for o in observations]) for s in seeds]
    columns = design([(o[0], o[1], o[2]) for o in observations], positions, modules, names, width_label)
    matrix = np.column_stack(blocks)  # one intercept per seed
    where: dict[int, int] = {}  # column -> its index in the matrix
    rank = np.linalg.matrix_rank(matrix)
    for i, column in enumerate(columns):
        trial = np.column_stack([matrix, column.values])
        if np.linalg.matrix_rank(trial) > rank:
            matrix, rank = trial, rank + 1
            where[i] = matrix.shape[1] - 1
    coefficients, *_ = np.linalg.lstsq(matrix, y, rcond=None)
    dof = len(y) - matrix.shape[1]
    covariance = None
    if dof > 0:
        residual = y - matrix @ coefficients
        variance = float(residual @ residual) / dof
        covariance = variance * np.linalg.inv(matrix.T @ matrix)
    quantile = float(stats.t.ppf(0.5 + level / 2, dof)) if dof > 0 else math.nan
    found = []
    for i, column in enumerate(columns):
        entry: dict[str, Any] = {
            "factor": column.factor,
            "level": column.level,
            "estimate": None,
            "ci_low": None,
            "ci_high": None,
            "n": int(np.count_nonzero(column.values)),
            "resolved": False,
        }
        if i in where:
            j = where[i]
            entry["estimate"] = float(coefficients[j])
            if covariance is not None:
                half = quantile * math.sqrt(max(0.0, float(covariance[j, j])))
                entry["ci_low"], entry["ci_high"] = entry["estimate"] - half, entry["estimate"] + half
                entry["resolved"] = not entry["ci_low"] <= 0.0 <= entry["ci_high"]
        found.append(entry)
    return found


def effect_sentence(entry: Mapping[str, Any]) -> str:
    """One effect in words, e.g. "g (per doubling): no effect resolved, 95% interval −0.4 to +0.6 points"."""
    name = f"{entry['factor']} ({entry['level']})"
    if entry["estimate"] is None:
        return f"{name}: not estimable from these trials (it never varies apart from other factors)"
    if entry["ci_low"] is None:
        return f"{name}: {entry['estimate'] * 100:+.2f} points, no interval (too few trials for the factors)"
    interval = f"95% interval {entry['ci_low'] * 100:+.2f} to {entry['ci_high'] * 100:+.2f} points"
    if entry["resolved"]:
        return f"{name}: {entry['estimate'] * 100:+.2f} points ({interval}; n={entry['n']})"
    return f"{name}: no effect resolved, {interval} (n={entry['n']})"


def importance(
    trials: Sequence[optuna.trial.FrozenTrial], distributions: Mapping[str, Any], params: Sequence[str]
) -> dict[str, float] | None:
    """Optuna's PED-ANOVA importance of ``params`` (parameters every trial has) over trained
    trials (their values); None when it cannot be computed (too few trials)."""
    usable = [t for t in trials if all(p in t.params for p in params)]
    if len(usable) < 4 or not params:
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    for trial in usable:
        study.add_trial(
            optuna.trial.create_trial(
                value=trial.values[0],
                params={p: trial.params[p] for p in params},
                distributions={p: distributions[p] for p in params},
            )
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            found = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.PedAnovaImportanceEvaluator(), params=list(params)
            )
        except (RuntimeError, ValueError):
            return None
    return {name: float(value) for name, value in found.items()}
