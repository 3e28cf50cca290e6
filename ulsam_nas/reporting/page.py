"""index.html: one page tying a report's figures and tables together, with the study's settings
and provenance.  It opens from disk: relative links and inline styles only, no script."""

from __future__ import annotations

import datetime
import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
import yaml
from markupsafe import Markup

from ulsam_nas.reporting.data import StudyData
from ulsam_nas.search.storage import redact

PACKAGES = ("ulsam-nas", "torch", "optuna", "numpy", "pandas", "matplotlib", "scipy", "fvcore", "ptflops")


def git_revision(folder: Path | None = None) -> str:
    """The git commit of the ulsam-nas source (``+dirty`` with uncommitted changes); "unknown"
    outside a git checkout or without git."""
    folder = folder or Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "") if head else "unknown"


def provenance() -> dict[str, Any]:
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "git_revision": git_revision(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


def html_table(frame: pd.DataFrame) -> Markup:
    if frame.empty:
        return Markup("<p class='muted'>(none)</p>")
    return Markup(frame.to_html(index=False, escape=True, border=0, na_rep="-"))


def noise_frame(data: StudyData) -> pd.DataFrame:
    """Per fidelity: the vanilla reference's seed spread and the pooled within-candidate spread."""

    def points(value: float | None) -> str:
        return "-" if value is None else f"{value * 100:.2f}"

    return pd.DataFrame(
        [
            {
                "Fidelity": data.fidelity_text(row["rung"]),
                "Reference seeds": row["reference_seeds"],
                "Reference mean (%)": points(row["reference_mean"]),
                "Reference sd (points)": points(row["reference_sd"]),
                "Pooled sd (points)": f"{points(row['pooled_sd'])} ({row['pooled_dof']} df)"
                if row["pooled_sd"]
                else "-",
            }
            for row in data.best["noise"]
        ]
    )


def training_frame(data: StudyData) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Stage": row["stage"],
                "Trials": row["trials"],
                "Seed runs": row["seed_runs"],
                "Candidate-epochs": f"{row['candidate_epochs']:.1f}",
                "Seconds": f"{row['train_seconds']:.0f}",
            }
            for row in data.best["training"]
        ]
    )


def config_yaml(data: StudyData) -> str:
    document = data.config.model_dump(mode="json")
    if document.get("storage"):
        document["storage"] = redact(document["storage"])
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def budget_text(data: StudyData) -> str:
    budget = data.config.budget
    parts = [
        f"{value:g} {unit}"
        for value, unit in (
            (budget.mmacs, "MMACs"),
            (budget.mparams, "MParams"),
            (budget.latency_ms, "ms latency (predicted)"),
        )
        if value is not None
    ]
    return ", ".join(parts) or "none"


def render_page(context: dict[str, Any]) -> str:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("ulsam_nas", "reporting"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    generated = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return environment.get_template("index.html.j2").render(generated=generated, **context)
