"""The groups ablation: accuracy against ULSAM's group count g, for each placement the study
trained at one width with several g (every module of the plan sharing that g).  The ULSAM paper
found g >= 4 better than g = 1 on ImageNet; this shows what the study's own data say, with the
spread over seeds where there are several."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from ulsam_nas.reporting.data import StudyData, vanilla_key
from ulsam_nas.reporting.figures import VANILLA_COLOUR

_COLUMNS = [
    "series",
    "width_mult",
    "placement",
    "rung",
    "groups",
    "accuracy",
    "accuracy_se",
    "seeds",
    "candidate",
]


def groups_series(data: StudyData) -> pd.DataFrame:
    """One row per point of the ablation: for each (α, placement) with at least two values of g
    at one fidelity, its points at the highest such fidelity."""
    points = data.points[(data.points["modules"] > 0) & data.points["groups"].notna()]
    found = []
    for (width, placement), frame in points.groupby(["width_mult", "placement"], sort=True):
        for rung in sorted(frame["rung"].unique(), reverse=True):
            at = frame[frame["rung"] == rung]
            if at["groups"].nunique() >= 2:
                found.append(at.assign(series=f"α{width:g} {placement}").sort_values("groups"))
                break
    if not found:
        return pd.DataFrame(columns=_COLUMNS)
    series = pd.concat(found, ignore_index=True)[_COLUMNS]
    series["groups"] = series["groups"].astype(int)
    return series


def _vanilla(data: StudyData, width: float, rung: int) -> tuple[float, float | None] | None:
    row = data.points[(data.points["candidate"] == vanilla_key(width)) & (data.points["rung"] == rung)]
    if row.empty:
        return None
    se = row["accuracy_se"].iloc[0]
    return float(row["accuracy"].iloc[0]), None if pd.isna(se) else float(se)


def _seed_count(frame: pd.DataFrame) -> str:
    low, high = int(frame["seeds"].min()), int(frame["seeds"].max())
    return str(low) if low == high else f"{low}–{high}"


def groups_figure(data: StudyData, series: pd.DataFrame) -> Figure | None:
    """Accuracy (%) against g on a log2 axis, one line per (α, placement); the plain backbone at
    the same α and fidelity as a dashed line of the same colour.  None without any series."""
    if series.empty:
        return None
    figure = Figure(figsize=(6.4, 4.4))
    axes = figure.subplots()
    for i, (name, frame) in enumerate(series.groupby("series", sort=True)):
        colour = f"C{i % 10}"
        rung = int(frame["rung"].iloc[0])
        se = frame["accuracy_se"].astype(float).fillna(0.0) * 100
        axes.errorbar(
            frame["groups"],
            frame["accuracy"] * 100,
            yerr=se,
            marker="o",
            color=colour,
            capsize=3,
            label=f"{name} ({data.fidelity_text(rung)}, {_seed_count(frame)} seeds)",
        )
        vanilla = _vanilla(data, float(frame["width_mult"].iloc[0]), rung)
        if vanilla is not None:
            axes.axhline(vanilla[0] * 100, color=colour, ls="--", lw=0.9, alpha=0.8)
    axes.plot([], [], ls="--", color=VANILLA_COLOUR, lw=0.9, label="vanilla, same α and fidelity")
    ticks = sorted(series["groups"].unique())
    axes.set_xscale("log", base=2)
    axes.set_xticks(ticks, [str(g) for g in ticks])
    axes.set_xlabel("ULSAM groups g")
    axes.set_ylabel("validation accuracy (%)")
    axes.grid(alpha=0.25)
    axes.legend(fontsize=7, loc="best")
    spread = " (bars: ±1 SE over seeds)" if series["accuracy_se"].notna().any() else ""
    axes.set_title(f"Study {data.name!r}: accuracy vs g per placement{spread}", fontsize=9)
    figure.tight_layout()
    return figure


def groups_table(data: StudyData, series: pd.DataFrame) -> pd.DataFrame:
    """The ablation laid out like the ULSAM paper's tables: one row per (α, placement), one
    column per g, and the plain backbone at the same α and fidelity."""
    if series.empty:
        return pd.DataFrame()
    columns = sorted(series["groups"].unique())

    def cell(accuracy: float, se: float | None, seeds: int) -> str:
        spread = "" if se is None or pd.isna(se) else f" ± {se * 100:.2f}"
        return f"{accuracy * 100:.2f}{spread} ({seeds})"

    rows = []
    for _, frame in series.groupby("series", sort=True):
        first = frame.iloc[0]
        rung = int(first["rung"])
        row = {
            "α": f"{first['width_mult']:g}",
            "Placement": first["placement"],
            "Fidelity": data.fidelity_text(rung),
        }
        by_g = {int(r["groups"]): r for _, r in frame.iterrows()}
        for g in columns:
            r = by_g.get(int(g))
            row[f"g={g}"] = "-" if r is None else cell(r["accuracy"], r["accuracy_se"], int(r["seeds"]))
        vanilla = _vanilla(data, float(first["width_mult"]), rung)
        seeds = data.results.get(rung, {}).get(vanilla_key(float(first["width_mult"])), {})
        row["vanilla"] = "-" if vanilla is None else cell(vanilla[0], vanilla[1], len(seeds))
        rows.append(row)
    return pd.DataFrame(rows)


GROUPS_NOTES = [
    "Cells: mean validation accuracy (%) ± one standard error over seeds (number of seeds).",
    "Only placements the study trained at one width with two or more g (the same g in every module) appear.",
    "The ULSAM paper (Saini et al., WACV 2020) found g >= 4 better than g = 1 on ImageNet.",
]
