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
CALIBRATION_FILES = ("calibration.md", "calibration.csv", "calibration.png")

_CAPTIONS = {
    "macs": "Validation accuracy against exact MACs (closed form, batch 1).",
    "params": "Validation accuracy against parameters.",
    "latency_ms": "Validation accuracy against latency measured at batch 1 on the machine that trained "
    "each candidate.",
}
_NAMES = {"macs": "pareto_macs", "params": "pareto_params", "latency_ms": "pareto_latency"}


def _check_target(target: Path) -> None:
    if target.exists() and not target.is_dir():
        raise InvalidInput(f"--out {target} is a file; give a folder")
    if target.is_dir() and any(target.iterdir()):
        ours = (target / "index.html").is_file() or any(
            (target / name).is_file() for name in CALIBRATION_FILES
        )
        if not ours:
            raise InvalidInput(
                f"--out {target} is a folder that holds no report (no index.html), and a report replaces "
                "its folder; give a new or empty folder"
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

    from ulsam_nas.output import write_directory
    from ulsam_nas.reporting.data import load_study_data
    from ulsam_nas.search.storage import open_study, resolve_study

    storage, name = resolve_study(study, storage, study_name)
    target = Path(out) if out is not None else Path("reports") / name
    _check_target(target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # optuna's experimental-API notes
        data = load_study_data(open_study(storage, name), storage)
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
