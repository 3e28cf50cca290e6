"""Pareto fronts of accuracy against cost (exact MACs, params, measured latency): which
candidates are on them, the figures, and the table of the front's configurations.

Accuracies measured at different fidelities are not comparable (a 2-epoch proxy inflates width
gaps and rewards shallow networks), so every fidelity the study trained at gets its own panel and
its own front; the table lists the front at the highest fidelity reached."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from ulsam_nas.reporting.data import StudyData, vanilla_key
from ulsam_nas.reporting.figures import GREY, GroupColours, legend_marker
from ulsam_nas.search.noise import paired_comparison
from ulsam_nas.search.space import Candidate

Axis = Literal["macs", "params", "latency_ms", "predicted_latency_ms"]
AXES: tuple[Axis, ...] = ("macs", "params", "latency_ms", "predicted_latency_ms")


def pareto_front(accuracy: Sequence[float], cost: Sequence[float]) -> list[bool]:
    """For each point, whether no other point dominates it (at least as accurate and at most as
    costly, strictly better in one).  Points with an unknown (NaN) cost are never on it; equal
    points are on it together."""
    known = [i for i in range(len(cost)) if not math.isnan(cost[i])]
    order = sorted(known, key=lambda i: (cost[i], -accuracy[i]))
    on_front = [False] * len(cost)
    best = -math.inf
    start = 0
    while start < len(order):
        end = start
        while end < len(order) and cost[order[end]] == cost[order[start]]:
            end += 1
        same_cost = order[start:end]
        top = max(accuracy[i] for i in same_cost)
        if top > best:
            for i in same_cost:
                on_front[i] = accuracy[i] == top
            best = top
        start = end
    return on_front


def front_mask(points: pd.DataFrame, axis: Axis) -> pd.Series:
    """``pareto_front`` of a frame of points (one fidelity) against ``axis``."""
    cost = [math.nan if pd.isna(v) else float(v) for v in points[axis]]
    return pd.Series(pareto_front(list(points["accuracy"]), cost), index=points.index)


# -- figures ----------------------------------------------------------------------------------
_SCALE = {
    "macs": (1e6, "MMACs (exact closed form)"),
    "latency_ms": (1.0, "latency (ms, batch 1, measured)"),
    "predicted_latency_ms": (1.0, "latency (ms, predicted by the study's latency table)"),
}


def _params_scale(data: StudyData) -> tuple[float, str]:
    if data.points["params"].max() < 1e6:
        return 1e3, "parameters (thousands)"
    return 1e6, "parameters (millions)"


def _budget(data: StudyData, axis: Axis) -> float | None:
    budget = data.config.budget
    return {
        "macs": budget.mmacs and budget.mmacs * 1e6,
        "params": budget.mparams and budget.mparams * 1e6,
        "latency_ms": None,  # the latency budget is judged on the prediction
        "predicted_latency_ms": budget.latency_ms,
    }[axis]


def _draw_over_budget(panel: Axes, data: StudyData, axis: Axis, scale: float, budget: float | None) -> str:
    """Over-budget candidates (never trained) as grey crosses on the panel's bottom edge, those
    beyond the trained ones as arrows at its right end (so the trained points keep the axis);
    returns the line listing them with their cost, for under the axis label."""
    over = data.over_budget[data.over_budget[axis].notna()] if axis in data.over_budget else data.over_budget
    if over.empty:
        return ""
    trained = data.points[axis].dropna() / scale
    right = max([float(trained.max())] + ([budget / scale] if budget is not None else [])) * 1.12
    left = float(trained.min()) * 0.92
    panel.set_xlim(left, right)
    edge = blended_transform_factory(panel.transData, panel.transAxes)
    listed = []
    for _, row in over.sort_values(axis).iterrows():
        x = row[axis] / scale
        beyond = x > right
        shown = right if beyond else x
        panel.scatter(
            [shown],
            [0.0],
            transform=edge,
            marker=">" if beyond else "x",
            c=GREY,
            s=40,
            clip_on=False,
            zorder=5,
        )
        listed.append(f"α{row['width_mult']:g} {x:,.0f}" if x >= 100 else f"α{row['width_mult']:g} {x:.3g}")
    return "over budget, not trained: " + ", ".join(listed)


def _panel_title(data: StudyData, rung: int) -> str:
    names = data.ladder.stage_names()
    stage = names[rung]
    if rung == data.ladder.last and data.ladder.top_k:
        stage += " + confirm"
    return f"{stage}: {data.fidelity_text(rung)}"


TIE_COLOUR = "#d4a000"
_HIGHLIGHT = {"best": ("*", 330), "tied with best": ("o", 190)}  # status -> (marker, area)


def pareto_figure(data: StudyData, axis: Axis) -> Figure | None:
    """Validation accuracy against ``axis``, one panel per fidelity: every trial (over-budget
    and pruned greyed), the front joined, ±1 SE bars, ties with the best marked, vanilla
    baselines labelled, the budget as a line, colour by g.  None when no point has the cost
    (latency that was never measured)."""
    points = data.points
    if points[axis].isna().all():
        return None
    scale, label = _params_scale(data) if axis == "params" else _SCALE[axis]
    colours = GroupColours(g for g in points["groups"].dropna().astype(int))
    rungs = sorted(data.results)
    figure = Figure(figsize=(4.8 * len(rungs), 4.6))
    panels = figure.subplots(1, len(rungs), sharex=True, squeeze=False)[0]
    budget = _budget(data, axis)
    marked_over = marked_pruned = False
    for panel, rung in zip(panels, rungs, strict=True):
        here = points[points["rung"] == rung].copy()
        here["front"] = front_mask(here, axis)
        x = here[axis] / scale
        y = here["accuracy"] * 100
        with_se = here["accuracy_se"].notna()
        panel.errorbar(
            x[with_se],
            y[with_se],
            yerr=here.loc[with_se, "accuracy_se"] * 100,
            fmt="none",
            ecolor="#555555",
            elinewidth=0.8,
            capsize=2.5,
            zorder=2,
        )
        front = here[here["front"]].sort_values(axis)
        panel.plot(front[axis] / scale, front["accuracy"] * 100, "-", color="#333333", lw=1.2, zorder=1)
        for _, row in here.iterrows():
            _draw_point(panel, row, axis, scale, colours)
        marked_pruned = _draw_pruned(panel, data, rung, axis, scale) or marked_pruned
        over_line = _draw_over_budget(panel, data, axis, scale, budget) if rung == rungs[0] else ""
        marked_over = marked_over or bool(over_line)
        if budget is not None:
            panel.axvline(budget / scale, color="#c0392b", ls="--", lw=1.0)
        known = points[axis].dropna()
        if axis != "macs" and axis != "params" and known.min() > 0 and known.max() / known.min() > 20:
            panel.set_xscale("log")  # one slow measurement must not squash the rest
        panel.set_title(_panel_title(data, rung), fontsize=9)
        panel.set_xlabel(label + (f"\n{over_line}" if over_line else ""))
        panel.grid(alpha=0.25)
    panels[0].set_ylabel("validation accuracy (%)")
    handles = _legend_handles(points, colours, marked_over, marked_pruned, budget is not None)
    figure.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=7.5, frameon=False)
    errors = " Error bars: ±1 standard error over seeds." if data.points["accuracy_se"].notna().any() else ""
    partial = " PARTIAL: the study is still running." if data.partial else ""
    figure.suptitle(f"Study {data.name!r}: accuracy vs {label.split(' (')[0]}.{errors}{partial}", fontsize=10)
    figure.tight_layout(rect=(0, 0.09 + 0.03 * (len(handles) > 6), 1, 0.96))
    return figure


def _draw_point(panel: Axes, row: pd.Series, axis: Axis, scale: float, colours: GroupColours) -> None:
    """One candidate: coloured by g, square for vanilla, edged on the front, the best starred and
    a candidate tied with it ringed, vanilla labelled."""
    colour = colours.colour(None if pd.isna(row["groups"]) else int(row["groups"]), row["vanilla"])
    marker = "s" if row["vanilla"] else ("o" if not pd.isna(row["groups"]) else "D")
    size = 64 if row["front"] else 30
    x, y = row[axis] / scale, row["accuracy"] * 100
    panel.scatter(
        x,
        y,
        s=size,
        c=colour,
        marker=marker,
        zorder=3,
        edgecolors="black" if row["front"] else "none",
        linewidths=1.0,
    )
    highlight = _HIGHLIGHT.get(row["status"].split(" (")[0])
    if highlight is not None:
        marker, area = highlight
        panel.scatter(
            x, y, s=area, marker=marker, facecolors="none", edgecolors=TIE_COLOUR, linewidths=1.6, zorder=4
        )
    if row["vanilla"]:
        panel.annotate(
            f"vanilla α{row['width_mult']:g}", (x, y), xytext=(5, -11), textcoords="offset points", fontsize=7
        )


def _draw_pruned(panel: Axes, data: StudyData, rung: int, axis: Axis, scale: float) -> bool:
    """The rung's pruned trials, hollow, at their last reported accuracy; whether any was drawn."""
    pruned = data.pruned[data.pruned["stage"] == data.ladder.stage_names()[rung]] if rung else data.pruned
    if not (len(pruned) and axis in pruned and pruned[axis].notna().any()):
        return False
    panel.scatter(
        pruned[axis] / scale, pruned["accuracy"] * 100, s=26, facecolors="none", edgecolors=GREY, zorder=2
    )
    return True


def _legend_handles(
    points: pd.DataFrame, colours: GroupColours, over: bool, pruned: bool, budget: bool
) -> list[Any]:
    handles = colours.legend_handles(mixed=bool((points["groups"].isna() & ~points["vanilla"]).any()))
    handles += [
        legend_marker("white", "o", "on the Pareto front (joined)", markeredgecolor="black"),
        legend_marker(TIE_COLOUR, "*", "best", markerfacecolor="none", markersize=11),
        legend_marker(
            TIE_COLOUR, "o", "tied with best (paired t-test)", markerfacecolor="none", markersize=9
        ),
    ]
    if over:
        handles.append(legend_marker(GREY, "x", "over budget (not trained)"))
    if pruned:
        handles.append(legend_marker(GREY, "o", "pruned (last epoch reported)", markerfacecolor="none"))
    if budget:
        handles.append(legend_marker("#c0392b", "|", "budget", markersize=10))
    return handles


# -- table ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class VanillaDifference:
    text: str
    points: float | None = None  # candidate − vanilla, accuracy points
    se: float | None = None
    seeds: int = 0
    rung: int | None = None


def vanilla_difference(data: StudyData, key: str, rung: int) -> VanillaDifference:
    """The candidate's accuracy minus the plain backbone's at the same α, paired over common
    seeds, at ``rung`` (or the highest lower rung where both were trained)."""
    width, _ = Candidate.split_key(key)
    vanilla = vanilla_key(width)
    if key == vanilla:
        return VanillaDifference("vanilla")
    if vanilla in set(data.over_budget.get("candidate", [])):
        return VanillaDifference("vanilla α over budget")
    for at in range(rung, -1, -1):
        mine, theirs = data.results.get(at, {}).get(key), data.results.get(at, {}).get(vanilla)
        if not mine or not theirs or not set(mine) & set(theirs):
            continue
        comparison = paired_comparison(mine, theirs)
        text = f"{comparison.difference * 100:+.2f}"
        if comparison.se is not None:
            text += f" ± {comparison.se * 100:.2f}"
        text += f" ({comparison.n} seed{'s' if comparison.n > 1 else ''}"
        text += ")" if at == rung else f", {data.fidelity_text(at)})"
        se = None if comparison.se is None else comparison.se * 100
        return VanillaDifference(text, comparison.difference * 100, se, comparison.n, at)
    return VanillaDifference("vanilla α not trained")


def pareto_table(data: StudyData, thousands: bool = True) -> pd.DataFrame:
    """The configurations on the accuracy-vs-MACs front at the highest fidelity reached,
    cheapest first, with the paired difference to vanilla at the same α."""
    rung = data.final_rung
    here = data.points[data.points["rung"] == rung]
    axis: Axis = "predicted_latency_ms" if data.config.objective == "accuracy+latency" else "macs"
    front = here[front_mask(here, axis)].sort_values([axis, "accuracy"], ascending=[True, False])
    predicted = here["predicted_latency_ms"].notna().any()
    rows = []
    for _, row in front.iterrows():
        difference = vanilla_difference(data, row["candidate"], rung)
        latency = row["latency_ms"]
        rows.append(
            {
                "Backbone": row["backbone"],
                "α": f"{row['width_mult']:g}",
                "Plan": plan_label(row) or "(none)",
                "g": row["groups_label"].removeprefix("g=") or "-",
                "Params": f"{row['params']:,}" if thousands else row["params"],
                "MACs": f"{row['macs']:,}" if thousands else row["macs"],
                "Latency (ms)": "-" if pd.isna(latency) else f"{latency:.2f}",
                **({"Predicted (ms)": f"{row['predicted_latency_ms']:.2f}"} if predicted else {}),
                "Accuracy (%)": f"{row['accuracy'] * 100:.2f}",
                "± SE": "-" if pd.isna(row["accuracy_se"]) else f"{row['accuracy_se'] * 100:.2f}",
                "Seeds": row["seeds"],
                "Test (%)": _test_text(row),
                "vs best": row["status"] or "-",
                "Δ vanilla same α (points)": difference.text,
            }
        )
    return pd.DataFrame(rows)


def _test_text(row: pd.Series) -> str:
    if pd.isna(row["test_accuracy"]):
        return "-"
    se = "" if pd.isna(row["test_accuracy_se"]) else f" ± {row['test_accuracy_se'] * 100:.2f}"
    return f"{row['test_accuracy'] * 100:.2f}{se}"


def pareto_notes(data: StudyData) -> list[str]:
    rung = data.final_rung
    notes = [
        f"Accuracy: mean validation accuracy at {data.fidelity_text(rung)} ({data.config.proxy.data}), "
        "over the seeds listed (a confirmed candidate: the confirmation's fresh seeds); ± SE is one "
        "standard error over seeds.",
        "Test: the same models on the data's test part (confirmed candidates only; never used to select).",
        f"MACs and params: exact closed form ({data.config.budget.convention} convention), batch 1; "
        "latency measured on the machine that trained the candidate.",
        "Δ vanilla same α: the candidate's accuracy minus the plain backbone's at the same width, "
        "paired over common seeds (± SE of the paired difference).",
        "vs best: paired t-test over common seeds, 95% interval of the mean difference; tied when "
        "it contains 0.",
    ]
    if data.best.get("latency_device"):
        notes.append(
            f"Predicted: latency predicted by the study's latency table on {data.best['latency_device']} "
            "(measured once when the study was created; the latency budget is judged on it)."
        )
    if data.config.objective == "accuracy+latency":
        notes.append("Rows: the front of accuracy against predicted latency (the study's objective).")
    if "model" in data.network:  # a brought network: its widths are a factory argument's values
        argument = data.network.get("width_arg") or "width"
        notes.append(f"α: the width, here the value of the factory's {argument!r} argument.")
    if data.partial:
        notes.append("PARTIAL: " + "; ".join(data.partial) + ".")
    return notes


def plan_label(row: pd.Series) -> str:
    """A candidate's plan as a reader knows it: a brought network's with module paths."""
    where = row.get("where")
    return where if isinstance(where, str) else str(row["plan"])
