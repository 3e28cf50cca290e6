"""The factor-effect figure and table: what each choice (width, modules, replace, position, g)
does to accuracy, estimated from every trained trial of one fidelity (search/effects.py), with
95% intervals; resolved effects (interval excluding 0) are drawn in colour."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from ulsam_nas.reporting.data import StudyData
from ulsam_nas.reporting.figures import GREY

RESOLVED_COLOUR = "#1f77b4"

EFFECTS_NOTES = [
    "Effect on validation accuracy in points, from a linear model of every trained run at the "
    "fidelity named, blocked on seed (each seed its own intercept); 95% t intervals.",
    "Resolved: the interval excludes 0. Width levels are against the narrowest trained width; "
    "positions against the space's first position; g per doubling of one module's group count.",
    "Not estimable: the factor never varied apart from the others in these trials.",
]


def effects_frame(data: StudyData) -> pd.DataFrame:
    rows = []
    for entry in data.best.get("effects") or []:

        def points(value: float | None) -> str:
            return "-" if value is None else f"{value * 100:+.2f}"

        rows.append(
            {
                "Factor": entry["factor"],
                "Level": entry["level"],
                "Effect (points)": points(entry["estimate"]),
                "95% low": points(entry["ci_low"]),
                "95% high": points(entry["ci_high"]),
                "n": entry["n"],
                "Resolved": "yes"
                if entry["resolved"]
                else ("not estimable" if entry["estimate"] is None else "no"),
            }
        )
    return pd.DataFrame(rows)


def effects_figure(data: StudyData) -> Figure | None:
    """Each estimable effect with its interval, one row per factor level; None without any."""
    entries = [e for e in data.best.get("effects") or [] if e["estimate"] is not None]
    if not entries:
        return None
    figure = Figure(figsize=(6.4, 0.9 + 0.32 * len(entries)))
    axes = figure.subplots()
    for row, entry in enumerate(reversed(entries)):
        colour = RESOLVED_COLOUR if entry["resolved"] else GREY
        estimate = entry["estimate"] * 100
        if entry["ci_low"] is not None:
            low, high = entry["ci_low"] * 100, entry["ci_high"] * 100
            axes.errorbar(
                estimate, row, xerr=[[estimate - low], [high - estimate]], fmt="o", color=colour, capsize=3
            )
        else:
            axes.plot(estimate, row, "o", color=colour, markerfacecolor="none")
    axes.axvline(0, color="black", lw=0.8)
    axes.set_yticks(
        range(len(entries)), [f"{e['factor']}: {e['level']}" for e in reversed(entries)], fontsize=7
    )
    axes.set_xlabel("effect on validation accuracy (points), 95% interval")
    rung = data.best.get("effects_rung") or 0
    axes.set_title(
        f"Study {data.name!r}: factor effects at {data.fidelity_text(rung)} "
        f"({data.best.get('effects_observations')} trained runs; colour: resolved)",
        fontsize=8,
    )
    axes.grid(axis="x", alpha=0.25)
    figure.tight_layout()
    return figure
