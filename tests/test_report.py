"""Reports: a hand-built study with designed accuracies (no training) gives tables whose exact
contents are worked out here by hand; the front equals a brute-force one; the figures are real
PNG/SVG with the points drawn; index.html renders in headless Chromium."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import optuna
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from tests.latex_compile import compile_tables
from tests.studies import small_study
from ulsam_nas import network_cost
from ulsam_nas.cli import main
from ulsam_nas.reporting import report
from ulsam_nas.reporting.page import git_revision
from ulsam_nas.reporting.pareto import pareto_front
from ulsam_nas.search.config import StudyConfig, load_study_config
from ulsam_nas.search.problem import Problem, prepare
from ulsam_nas.search.records import candidate_record
from ulsam_nas.search.space import Candidate

NETWORK = {"resolution": 32, "num_classes": 10, "in_channels": 3, "stem": "small"}  # synthetic data
SEEDS = [0, 1, 2]
# α 0.25 unless said; accuracies per seed 0, 1, 2; latency in ms.
DESIGN = {
    "": ([0.80, 0.81, 0.79], 2.0),  # vanilla: dominated by the cheaper, better replace@9
    "insert@12:ulsam:groups=1": ([0.82, 0.83, 0.81], 2.6),  # same MACs as g=4, less accurate
    "insert@12:ulsam:groups=4": ([0.84, 0.845, 0.835], 2.5),  # best
    "replace@9:ulsam:groups=4": ([0.83, 0.80, 0.86], 1.8),  # cheapest; tied with best (wide spread)
}
PRUNED_PLAN = "insert@9:ulsam:groups=1"


def _candidate_attrs(problem: Problem, width: float, plan: str) -> dict:
    """What the search writes for a search trial of this configuration (the real writer)."""
    candidate = problem.parameters.candidate(Candidate.key_of(width, plan))
    return {**candidate_record(problem, candidate, 0), "stage": "search"}


def build_study(
    folder: Path, trials: int = 6, storage_in_config: str | None = None, empty: bool = False
) -> Path:
    """A journal storage holding study "fixture" as ``ulsam-nas search`` would have left it."""
    path = folder / "fixture.journal"
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    study = optuna.create_study(study_name="fixture", storage=storage, direction="maximize")
    config = StudyConfig(
        name="fixture",
        space="space.yaml",
        budget={"mmacs": 12.5},
        pruner="median",
        proxy={
            "data": "synthetic",
            "train_images": 256,
            "val_images": 128,
            "epochs": 1,
            "batch_size": 64,
            "seeds": 3,
        },
        trials=trials,
        storage=storage_in_config,
    )
    study.set_user_attr("config", config.model_dump())
    study.set_user_attr("network", NETWORK)
    study.set_user_attr("reference", "0.25|")
    study.set_user_attr("data", "synthetic: 256 training and 128 validation images, 3×32×32, 10 classes")
    if empty:
        return path
    with tempfile.TemporaryDirectory() as writer:  # the same space, proxy and budget; nothing left
        problem = prepare(load_study_config(small_study(Path(writer))))
    keys = [f"0.25|{plan}" for plan in [*DESIGN, PRUNED_PLAN]] + ["0.5|"]
    distribution = {"candidate": optuna.distributions.CategoricalDistribution(keys)}
    for plan, (accuracies, latency) in DESIGN.items():
        attrs = _candidate_attrs(problem, 0.25, plan)
        mean = sum(accuracies) / 3
        sd = math.sqrt(sum((a - mean) ** 2 for a in accuracies) / 2)
        attrs.update(
            seeds=SEEDS,
            accuracies=accuracies,
            accuracy=mean,
            accuracy_se=sd / math.sqrt(3),
            latency_ms=latency,
            trained_seeds=SEEDS,
            train_seconds=1.0,
            candidate_epochs=3.0,
            trained_steps=12,
            reference=plan == "",
            baseline=plan == "",
        )
        study.add_trial(
            optuna.trial.create_trial(
                values=[mean],
                params={"candidate": attrs["candidate"]},
                distributions=distribution,
                user_attrs=attrs,
            )
        )
    over = _candidate_attrs(problem, 0.5, "") | {
        "accuracy": 0.0,
        "over_budget": True,
        "trained_steps": 0,
        "baseline": True,
        "train_seconds": 0.0,
        "latency_ms": None,
    }
    study.add_trial(
        optuna.trial.create_trial(
            values=[0.0], params={"candidate": "0.5|"}, distributions=distribution, user_attrs=over
        )
    )
    pruned = _candidate_attrs(problem, 0.25, PRUNED_PLAN) | {"accuracy": 0.5, "trained_steps": 4}
    study.add_trial(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.PRUNED,
            params={"candidate": pruned["candidate"]},
            distributions=distribution,
            user_attrs=pruned,
            intermediate_values={1: 0.5},
        )
    )
    return path


def run_report(tmp_path: Path, storage: Path, *extra: str) -> tuple[int, Path]:
    out = tmp_path / "report"
    code = main(["report", "--storage", str(storage), "--study-name", "fixture", "--out", str(out), *extra])
    return code, out


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    code, out = run_report(folder, build_study(folder))
    assert code == 0
    return out


# -- the front ------------------------------------------------------------------------------
def brute_force_front(accuracy: list[float], cost: list[float]) -> list[bool]:
    def dominates(j: int, i: int) -> bool:
        return (
            accuracy[j] >= accuracy[i]
            and cost[j] <= cost[i]
            and (accuracy[j] > accuracy[i] or cost[j] < cost[i])
        )

    return [
        not math.isnan(cost[i])
        and not any(dominates(j, i) for j in range(len(cost)) if j != i and not math.isnan(cost[j]))
        for i in range(len(cost))
    ]


@given(
    st.lists(
        st.tuples(st.integers(0, 6), st.one_of(st.integers(0, 6).map(float), st.just(math.nan))),
        max_size=25,
    )
)
def test_the_front_is_the_set_no_point_dominates(points):
    accuracy = [a / 6 for a, _ in points]
    cost = [c for _, c in points]
    assert pareto_front(accuracy, cost) == brute_force_front(accuracy, cost)


def test_the_front_of_a_fixed_set():
    # (accuracy, cost): the cheapest, the most accurate and one in between are on it; a point
    # equal to one on it is on it too; dominated and unknown-cost points are not.
    accuracy = [0.70, 0.80, 0.75, 0.74, 0.80, 0.90, 0.99]
    cost = [1.0, 2.0, 2.0, 3.0, 2.0, 4.0, math.nan]
    assert pareto_front(accuracy, cost) == [True, True, False, False, True, True, False]


# -- tables ---------------------------------------------------------------------------------
def test_pareto_table_exact_contents(written):
    table = pd.read_csv(written / "pareto.csv", dtype=str, keep_default_na=False)
    best_macs = network_cost("mobilenet_v1", 0.25, "insert@12:ulsam:groups=4", **NETWORK)
    cheap = network_cost("mobilenet_v1", 0.25, "replace@9:ulsam:groups=4", **NETWORK)
    assert table.to_dict("records") == [
        {
            "Backbone": "mobilenet_v1",
            "α": "0.25",
            "Plan": "replace@9:ulsam:groups=4",
            "g": "4",
            "Params": str(cheap.params),
            "MACs": str(cheap.macs),
            "Latency (ms)": "1.80",
            "Accuracy (%)": "83.00",
            "± SE": "1.73",
            "Seeds": "3",
            "Test (%)": "-",
            "vs best": "tied with best",
            # paired over seeds 0-2: 0.03, -0.01, 0.07 -> mean 3.00, sd 4 points, SE 4/√3
            "Δ vanilla same α (points)": "+3.00 ± 2.31 (3 seeds)",
        },
        {
            "Backbone": "mobilenet_v1",
            "α": "0.25",
            "Plan": "insert@12:ulsam:groups=4",
            "g": "4",
            "Params": str(best_macs.params),
            "MACs": str(best_macs.macs),
            "Latency (ms)": "2.50",
            "Accuracy (%)": "84.00",
            "± SE": "0.29",
            "Seeds": "3",
            "Test (%)": "-",
            "vs best": "best (provisional)",
            "Δ vanilla same α (points)": "+4.00 ± 0.29 (3 seeds)",
        },
    ]
    markdown = (written / "pareto.md").read_text()
    assert f"{cheap.macs:,}" in markdown
    assert "paired t-test" in markdown
    latex = (written / "pareto.tex").read_text()
    assert "\\begin{tabular}" in latex and "\\toprule" in latex
    assert "replace@9:ulsam:groups=4" in latex and latex.isascii()


def test_every_tex_table_of_the_report_compiles(written, tmp_path):
    tables = sorted(written.glob("*.tex"))
    assert {t.name for t in tables} >= {"pareto.tex", "groups.tex"}
    compile_tables(tmp_path, tables)


def test_the_summary_front_equals_a_brute_force_front_over_the_stored_trials(written, tmp_path):
    storage = build_study(tmp_path)
    study = optuna.load_study(
        study_name="fixture",
        storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(storage))),
    )
    trained = [
        t.user_attrs
        for t in study.trials
        if t.state == optuna.trial.TrialState.COMPLETE and not t.user_attrs["over_budget"]
    ]
    summary = json.loads((written / "summary.json").read_text())
    for axis in ("macs", "params", "latency_ms"):
        on = brute_force_front([a["accuracy"] for a in trained], [float(a[axis]) for a in trained])
        assert (
            sorted(a["candidate"] for a, keep in zip(trained, on, strict=True) if keep)
            == summary["pareto_front"]
        )
    assert summary["partial"] == []
    assert summary["recommended_candidate"] == "0.25|replace@9:ulsam:groups=4"


def test_groups_ablation_table_has_g_as_columns(written):
    table = pd.read_csv(written / "groups.csv")
    assert sorted(table["groups"]) == [1, 4]
    assert set(table["placement"]) == {"insert@12:ulsam"}
    markdown = (written / "groups.md").read_text()
    # SE: sd 1 point / √3 for g=1 and the vanilla, 0.5 / √3 for g=4
    row = next(line for line in markdown.splitlines() if "insert@12:ulsam" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells == [
        "0.25",
        "insert@12:ulsam",
        "1 epochs × 256 images",
        "82.00 ± 0.58 (3)",
        "84.00 ± 0.29 (3)",
        "80.00 ± 0.58 (3)",
    ]


def test_overhead_is_tabled_at_each_placed_shape(written):
    frame = pd.read_csv(written / "overhead.csv")
    # α 0.25, stem small, 32×32: layer 9 is 128×8×8, layer 12 is 256×4×4 (the pruned insert@9 is
    # not a trained candidate, so only its shape's other modules count)
    assert sorted(frame["Shape (m×h×w)"].unique()) == ["128×8×8", "256×4×4"]
    ulsam = frame[frame["Module"].str.startswith("ULSAM")]
    assert sorted(ulsam["Module"]) == ["ULSAM (g=1)", "ULSAM (g=4)", "ULSAM (g=4)"]
    assert "Non-local" in set(frame["Module"])


def test_trials_csv_lists_every_trial(written):
    trials = pd.read_csv(written / "trials.csv")
    assert len(trials) == 6
    assert sorted(trials["state"]) == ["COMPLETE"] * 5 + ["PRUNED"]
    assert trials.loc[trials["over_budget"], "candidate"].tolist() == ["0.5|"]


# -- figures --------------------------------------------------------------------------------
def _colours(path: Path) -> set[tuple[int, int, int]]:
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        return {colour for _, colour in image.convert("RGB").getcolors(maxcolors=1 << 20)}


BLUE, ORANGE = (0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)


@pytest.mark.parametrize(
    ("name", "drawn", "collections"),
    [
        # PNG: the g=1 and g=4 colours (the first two group colours).  SVG: one scatter per
        # trained point (4), the best's star, the tied ring, the pruned trial and the over-budget
        # vanilla; neither of the last two has a measured latency (legend entries are lines).
        ("pareto_macs", {BLUE, ORANGE}, 8),
        ("pareto_params", {BLUE, ORANGE}, 8),
        ("pareto_latency", {BLUE, ORANGE}, 6),
        ("groups", {BLUE}, 0),  # the one series' line and markers
    ],
)
def test_figures_are_valid_png_and_svg_with_the_points_drawn(written, name, drawn, collections):
    assert drawn <= _colours(written / f"{name}.png")
    svg = ET.parse(written / f"{name}.svg").getroot()
    assert svg.tag.endswith("svg")
    ids = [e.get("id", "") for e in svg.iter()]
    assert sum(i.startswith("PathCollection") for i in ids) == collections
    if name == "groups":
        assert any(i.startswith("LineCollection") for i in ids)  # the series' ±SE bars


def test_pareto_figure_marks_the_over_budget_vanilla(written):
    svg = (written / "pareto_macs.svg").read_text()
    assert "over budget, not trained" in svg or "over budget" in svg


# -- the page -------------------------------------------------------------------------------
def test_index_links_only_relative_files_that_exist(written):
    html = (written / "index.html").read_text()
    import re

    links = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert links
    for link in links:
        if link.startswith("#") or link.startswith("data:"):
            continue
        assert "://" not in link and not link.startswith("/"), link
        assert (written / link).is_file(), link
    assert "<script" not in html
    assert "Partial report" not in html
    for text in ("optuna", "torch", "git revision", "12.5 MMACs", "best (provisional)"):
        assert text in html


def test_partial_study_is_marked(tmp_path, capsys):
    code, out = run_report(tmp_path, build_study(tmp_path, trials=10))
    assert code == 0
    assert "PARTIAL" in capsys.readouterr().out
    assert "Partial report" in (out / "index.html").read_text()
    assert json.loads((out / "summary.json").read_text())["partial"] == ["6 of 10 search trials finished"]


def test_empty_study_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys):
    code, out = run_report(tmp_path, build_study(tmp_path, empty=True))
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no finished, trained trial" in err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["fixture.journal"]


def test_a_password_in_the_storage_url_never_reaches_the_report(tmp_path):
    storage = build_study(tmp_path, storage_in_config="postgresql://u:secret@127.0.0.1:1/x")
    code, out = run_report(tmp_path, storage)
    assert code == 0
    for path in out.iterdir():
        if path.suffix in (".html", ".yaml", ".json", ".csv", ".md", ".svg", ".tex"):
            assert "secret" not in path.read_text(), path.name


def test_a_rewrite_keeps_calibration_and_a_failure_leaves_the_old_report(tmp_path, monkeypatch):
    storage = build_study(tmp_path)
    assert run_report(tmp_path, storage)[0] == 0
    out = tmp_path / "report"
    (out / "calibration.md").write_text("# Calibration of study 'fixture'\n")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    paths = report(storage=str(storage), study_name="fixture", out=out)
    assert (out / "pareto_macs.svg").read_bytes() == before["pareto_macs.svg"]  # same study, same file
    assert out / "calibration.md" in paths and (out / "calibration.md").read_text().startswith(
        "# Calibration"
    )
    assert "Calibration of study" in (out / "index.html").read_text()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("ulsam_nas.reporting.page.render_page", broken)
    with pytest.raises(RuntimeError):
        report(storage=str(storage), study_name="fixture", out=out)
    assert {p.name for p in out.iterdir()} == set(before) | {"calibration.md"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fixture.journal", "report"]  # no staging left


def test_out_folder_that_is_not_a_report_is_refused(tmp_path, capsys):
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "notes.txt").write_text("mine")
    code, _ = run_report(tmp_path, build_study(tmp_path))
    assert code == 2 and "holds no report" in capsys.readouterr().err
    assert (tmp_path / "report" / "notes.txt").read_text() == "mine"


def test_git_revision_is_unknown_outside_a_checkout(tmp_path):
    assert git_revision(tmp_path) == "unknown"


def test_report_of_a_real_search(tmp_path, capsys):
    from tests.studies import run_search, small_study

    small_study(tmp_path)  # writes space.yaml
    path = tmp_path / "study.yaml"
    path.write_text(
        "name: t\nspace: space.yaml\nbudget: {mmacs: 12.5}\ntrials: 4\n"
        "proxy: {data: synthetic, train_images: 128, val_images: 64, epochs: 1, batch_size: 64, seeds: 2}\n"
    )
    run_search(path)
    assert main(["report", str(path), "--out", str(tmp_path / "out")]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["pareto_front"] and summary["partial"] == []
    assert (tmp_path / "out" / "pareto_macs.png").stat().st_size > 10_000


# -- the browser ----------------------------------------------------------------------------
def _chromium() -> tuple[str, str] | None:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None
    )
    return (binary, driver) if binary and driver else None


def test_index_html_renders_in_headless_chromium(written):
    found = _chromium()
    if found is None:
        message = "Chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(message + " and REQUIRE_BROWSER=1")
        pytest.skip(message)
    selenium = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.binary_location = found[0]
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = selenium.Chrome(options=options, service=Service(found[1]))
    try:
        driver.get((written / "index.html").resolve().as_uri())
        assert driver.title == "ulsam-nas report: fixture"
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])"
        )
        assert {src for src, _, _ in images} >= {"pareto_macs.png", "pareto_params.png", "groups.png"}
        assert all(complete and width > 0 for _, complete, width in images), images
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert errors == []
        assert driver.find_element("id", "status").text.startswith("The study is finished")
    finally:
        driver.quit()
