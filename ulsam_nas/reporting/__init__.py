"""Reports from a study's storage: Pareto-front plots, tables (CSV, Markdown, LaTeX), the groups
ablation, the attention overhead at the placed shapes, and an index.html tying them together.

``report(...)`` (also ``ulsam_nas.report``) writes the whole folder atomically and returns the
paths it wrote."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ulsam_nas.errors import InvalidInput

if TYPE_CHECKING:  # the report modules load matplotlib and pandas: only when a report is made
    from ulsam_nas.reporting.data import StudyData

# Written by ``ulsam-nas calibrate`` into the same folder: a report keeps them and shows them.
CALIBRATION_FILES = ("calibration.md", "calibration.csv", "calibration.png", "calibration.json")

_CAPTIONS = {
    "macs": "Validation accuracy against exact MACs (closed form, batch 1).",
    "params": "Validation accuracy against parameters.",
    "latency_ms": "Validation accuracy against latency measured at batch 1 on the machine that trained "
    "each candidate.",
    "predicted_latency_ms": "Validation accuracy against latency predicted by the study's latency table "
    "(its device is named in the notes); the latency budget, if any, is drawn here.",
}
_NAMES = {
    "macs": "pareto_macs",
    "params": "pareto_params",
    "latency_ms": "pareto_latency",
    "predicted_latency_ms": "pareto_latency_predicted",
}


def _check_target(target: Path) -> None:
    # A file there is refused before this by check_output_path; a folder must hold a report.
    if target.is_dir() and any(target.iterdir()):
        ours = (target / "index.html").is_file() or any(
            (target / name).is_file() for name in CALIBRATION_FILES
        )
        if not ours:
            raise InvalidInput(
                f"--out {target} is a folder that holds no report (no index.html), and a report replaces "
                "its folder; give a new or empty folder"
            )


def _check_settings(target: Path, settings: str, name: str) -> None:
    """A report folder of a study with other settings is not replaced (one line naming --out)."""
    import json

    summary = target / "summary.json"
    if not summary.is_file():
        return
    try:
        made = json.loads(summary.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        made = {}
    if made.get("settings", settings) != settings:
        raise InvalidInput(
            f"--out {target} holds the report of study {made.get('study')!r} made with other settings "
            f"({made.get('settings')}; study {name!r} has {settings}); give --out DIR for this one"
        )


def _calibration(target: Path) -> dict[str, Any] | None:
    """What ``ulsam-nas calibrate`` left in the report folder, for the page."""
    text, png, csv = (target / name for name in ("calibration.md", "calibration.png", "calibration.csv"))
    if not text.is_file() and not png.is_file():
        return None
    return {
        "png": png.name if png.is_file() else None,
        "csv": csv.is_file(),
        "text": text.read_text(encoding="utf-8") if text.is_file() else None,
    }


def build_files(data: StudyData, target: Path) -> dict[str, str | bytes]:
    """Every file of the report (relative name -> content) from a loaded study."""
    from ulsam_nas.output import render_frame, to_json
    from ulsam_nas.reporting.effects import EFFECTS_NOTES, effects_frame
    from ulsam_nas.reporting.groups import GROUPS_NOTES, groups_series, groups_table
    from ulsam_nas.reporting.overhead import overhead_frame, overhead_markdown, overhead_tables
    from ulsam_nas.reporting.page import (
        budget_text,
        config_yaml,
        html_table,
        noise_frame,
        provenance,
        render_page,
        training_frame,
    )
    from ulsam_nas.reporting.pareto import front_mask, pareto_notes, pareto_table

    files: dict[str, str | bytes] = {}
    figures = _pareto_files(data, files)
    effects_page = _effects_files(data, files)
    notes = pareto_notes(data)
    series = groups_series(data)
    groups_page = _groups_files(data, series, files)

    overheads = overhead_tables(data)
    files["overhead.md"] = overhead_markdown(overheads)
    files["overhead.csv"] = render_frame(overhead_frame(overheads), "csv")
    files["trials.csv"] = render_frame(data.trials, "csv")
    files["config.yaml"] = config_yaml(data)

    final = data.points[data.points["rung"] == data.final_rung]
    summary = {
        **data.best,
        "partial": data.partial,
        "final_fidelity": data.fidelity_text(data.final_rung),
        "pareto_front": sorted(final[front_mask(final, "macs")]["candidate"]),
    }
    files["summary.json"] = to_json(summary)

    calibration = _calibration(target)
    listed = sorted({*files, *(n for n in CALIBRATION_FILES if (target / n).is_file())})
    context = {
        "name": data.name,
        "storage": data.storage,
        "partial": data.partial,
        "best": data.best,
        "over_budget": len(data.over_budget),
        "pareto_figures": figures,
        "final_fidelity": data.fidelity_text(data.final_rung),
        "pareto_table": html_table(pareto_table(data)),
        "pareto_notes": notes,
        "groups_figure": groups_page,
        "groups_table": html_table(groups_table(data, series)) if groups_page else "",
        "groups_notes": GROUPS_NOTES,
        "effects_figure": effects_page,
        "effects_table": html_table(effects_frame(data)) if effects_page else "",
        "effects_notes": EFFECTS_NOTES,
        "split": data.best.get("split"),
        "overhead": [
            {"shape": shape.text, "where": ", ".join(shape.where), "table": html_table(table.to_frame())}
            for shape, table in overheads
        ],
        "convention": data.config.budget.convention,
        "reference": data.reference,
        "noise_table": html_table(noise_frame(data)),
        "training_table": html_table(training_frame(data)),
        "calibration": calibration,
        "config": data.config,
        "budget_text": budget_text(data),
        "data_text": data.data_text,
        "config_yaml": files["config.yaml"],
        "provenance": provenance(),
        "files": [*listed, "index.html"],
    }
    files["index.html"] = render_page(context)
    return files


def _pareto_files(data: StudyData, files: dict[str, str | bytes]) -> list[dict[str, str]]:
    """The Pareto figures (one per cost axis with data) and tables into ``files``; the figures'
    entries for the page."""
    from ulsam_nas.output import render_frame
    from ulsam_nas.reporting.figures import encode
    from ulsam_nas.reporting.pareto import AXES, pareto_figure, pareto_notes, pareto_table

    figures = []
    for axis in AXES:
        figure = pareto_figure(data, axis)
        if figure is None:
            continue
        encoded = encode(figure)
        name = _NAMES[axis]
        files[f"{name}.png"], files[f"{name}.svg"] = encoded["png"], encoded["svg"]
        figures.append(
            {
                "png": f"{name}.png",
                "svg": f"{name}.svg",
                "caption": _CAPTIONS[axis],
                "alt": f"Pareto front: accuracy vs {axis}",
            }
        )
    notes = pareto_notes(data)
    files["pareto.md"] = render_frame(pareto_table(data), "markdown", notes)
    files["pareto.csv"] = render_frame(pareto_table(data, thousands=False), "csv")
    files["pareto.tex"] = render_frame(pareto_table(data), "latex", notes)
    return figures


def _effects_files(data: StudyData, files: dict[str, str | bytes]) -> dict[str, str] | None:
    """The factor-effect figure and tables into ``files``; the figure's entry for the page."""
    from ulsam_nas.output import render_frame
    from ulsam_nas.reporting.effects import EFFECTS_NOTES, effects_figure, effects_frame

    figure = effects_figure(data)
    if figure is None:
        return None
    encoded = encode_figure(figure)
    files["effects.png"], files["effects.svg"] = encoded["png"], encoded["svg"]
    table = effects_frame(data)
    files["effects.md"] = render_frame(table, "markdown", EFFECTS_NOTES)
    files["effects.csv"] = render_frame(table, "csv")
    return {
        "png": "effects.png",
        "svg": "effects.svg",
        "alt": "effect of each factor on accuracy with 95% intervals",
        "caption": "What each choice does to accuracy, from every trained run of one fidelity.",
    }


def encode_figure(figure: Any) -> dict[str, bytes]:
    from ulsam_nas.reporting.figures import encode

    return encode(figure)


def _groups_files(data: StudyData, series: Any, files: dict[str, str | bytes]) -> dict[str, str] | None:
    """The groups ablation's figure and tables into ``files`` (when the study varied g alone);
    the figure's entry for the page."""
    from ulsam_nas.output import render_frame
    from ulsam_nas.reporting.figures import encode
    from ulsam_nas.reporting.groups import GROUPS_NOTES, groups_figure, groups_table

    if series.empty:
        return None
    encoded = encode(groups_figure(data, series))  # type: ignore[arg-type]
    files["groups.png"], files["groups.svg"] = encoded["png"], encoded["svg"]
    table = groups_table(data, series)
    files["groups.md"] = render_frame(table, "markdown", GROUPS_NOTES)
    files["groups.csv"] = render_frame(series, "csv")
    files["groups.tex"] = render_frame(table, "latex", GROUPS_NOTES)
    return {
        "png": "groups.png",
        "svg": "groups.svg",
        "alt": "accuracy against ULSAM groups g",
        "caption": "Accuracy against ULSAM's group count g, per placement.",
    }


@dataclass(frozen=True)
class Written:
    folder: Path
    paths: list[Path]
    partial: list[str]  # why the study is not finished; empty when it is


def write_report(
    study: str | Path | None = None,
    *,
    storage: str | None = None,
    study_name: str | None = None,
    out: str | Path | None = None,
) -> Written:
    """``report``, also saying whether the study was finished."""
    import warnings

    from ulsam_nas.output import check_output_path, write_directory
    from ulsam_nas.reporting.data import load_study_data
    from ulsam_nas.search.storage import open_study, resolve_study

    storage, name = resolve_study(study, storage, study_name)
    target = Path(out) if out is not None else Path("reports") / name
    check_output_path(
        target, "--out" if out is not None else "--out (default reports/<study-name>)", folder=True
    )
    _check_target(target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # optuna's experimental-API notes
        data = load_study_data(open_study(storage, name), storage)
    _check_settings(target, data.best["settings"], name)
    files = build_files(data, target)
    write_directory(target, files, keep=CALIBRATION_FILES)
    names = {*files, *(n for n in CALIBRATION_FILES if (target / n).is_file())}
    return Written(target, sorted(target / n for n in names), data.partial)


def report(
    study: str | Path | None = None,
    *,
    storage: str | None = None,
    study_name: str | None = None,
    out: str | Path | None = None,
) -> list[Path]:
    """Write the report of a study (a study file, or ``storage`` and ``study_name``) into
    ``out`` (default reports/<study-name>/), replacing an earlier report there atomically;
    returns the paths written.  Raises InvalidInput for a missing or empty study."""
    return write_report(study, storage=storage, study_name=study_name, out=out).paths


__all__ = ["CALIBRATION_FILES", "Written", "build_files", "report", "write_report"]
