"""The calibration command: rank statistics against scipy on fixed inputs, stratified sampling,
and a tiny calibration end to end on generated data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pytest
from scipy import stats

from ulsam_nas.cli import main
from ulsam_nas.errors import InvalidInput
from ulsam_nas.search.calibrate import (
    high_fidelity,
    kendall,
    noise_ceiling,
    placement_kind,
    regret,
    spearman,
    stratified_sample,
    top_k_overlap,
    with_interval,
)
from ulsam_nas.search.config import load_study_config
from ulsam_nas.search.space import Candidate

PROXY = [0.7872, 0.7877, 0.8072, 0.8008, 0.7467, 0.7971, 0.7700, 0.7700]
HIGH = [0.8628, 0.8610, 0.8603, 0.8590, 0.8588, 0.8615, 0.8540, 0.8570]


def test_rank_statistics_equal_scipy_on_fixed_inputs():
    assert kendall(PROXY, HIGH) == pytest.approx(stats.kendalltau(PROXY, HIGH, variant="b").statistic)
    assert spearman(PROXY, HIGH) == pytest.approx(stats.spearmanr(PROXY, HIGH).statistic)
    # τ-b with a tie in the proxy (0.7700 twice) differs from τ-a: the tie correction is applied.
    concordant_minus_discordant = sum(
        math.copysign(1, (PROXY[i] - PROXY[j]) * (HIGH[i] - HIGH[j]))
        for i in range(8)
        for j in range(i)
        if PROXY[i] != PROXY[j]
    )
    tau_b = concordant_minus_discordant / math.sqrt((28 - 1) * 28)
    assert kendall(PROXY, HIGH) == pytest.approx(tau_b)


def test_undefined_statistics_are_none():
    assert kendall([0.1, 0.2], [0.3, 0.4]) is None
    assert kendall([0.5, 0.5, 0.5], [0.1, 0.2, 0.3]) is None
    assert with_interval(kendall, [0.1, 0.2, 0.3], [0.1, 0.3, 0.2], 0)["ci_low"] is None


def test_bootstrap_interval_brackets_the_statistic_and_is_reproducible():
    first = with_interval(kendall, PROXY, HIGH, seed=0)
    again = with_interval(kendall, PROXY, HIGH, seed=0)
    assert first == again
    assert first["ci_low"] <= first["value"] <= first["ci_high"]
    assert -1 <= first["ci_low"] and first["ci_high"] <= 1


def test_top_k_overlap_regret_and_noise_ceiling():
    assert top_k_overlap(PROXY, HIGH, 3) == pytest.approx(1 / 3)  # proxy top: 2, 3, 5; high: 0, 1, 5
    assert regret(PROXY, HIGH) == pytest.approx(0.8628 - 0.8603)
    per_seed = [{0: 0.1, 1: 0.3}, {0: 0.2, 1: 0.2}, {0: 0.3, 1: 0.1}, {0: 0.4, 1: 0.4}]
    ceiling = noise_ceiling(per_seed)
    expected = stats.kendalltau([0.1, 0.2, 0.3, 0.4], [0.3, 0.2, 0.1, 0.4], variant="b").statistic
    assert ceiling == {"value": pytest.approx(expected), "seed_pairs": 1}
    assert noise_ceiling([{0: 0.1}, {0: 0.2}, {0: 0.3}])["value"] is None  # one seed


def test_stratified_sample_covers_widths_and_placement_kinds():
    candidates = [
        Candidate(w, plan, 1, 1, 0)
        for w in (0.25, 0.5)
        for plan in ["", "insert@9:ulsam:groups=1", "insert@9:ulsam:groups=4", "replace@9:ulsam:groups=4"]
    ]
    chosen = stratified_sample(candidates, 6, seed=0)
    assert len(chosen) == len({c.key for c in chosen}) == 6
    assert {(c.width_mult, placement_kind(c.plan)) for c in chosen} == {
        (w, kind) for w in (0.25, 0.5) for kind in ("plain", "insert", "replace")
    }
    assert stratified_sample(candidates, 6, seed=0) == chosen
    assert placement_kind("replace@7:ulsam:groups=4,insert@9:ulsam:groups=4") == "insert+replace"


def test_higher_fidelity_is_the_last_rung_or_at_most_twice_the_proxy_on_generated_data():
    root = Path(__file__).resolve().parent.parent
    config = load_study_config(root / "studies" / "default.yaml")
    assert high_fidelity(config, synthetic=False).model_dump() == {"epochs": 4, "images": 5000, "seeds": 1}
    synthetic = high_fidelity(config, synthetic=True)
    assert synthetic.epochs == 2 * config.proxy.epochs and synthetic.images == config.proxy.train_images


SPACE = """
backbone: mobilenet_v1
stem: small
width_mults: [0.25, 0.5]
positions:
  - {index: 9, actions: [insert, replace]}
groups: [1, 4]
max_modules: 1
"""


def tiny_study(tmp_path: Path) -> Path:
    """A study on a few generated images: seconds per calibration."""
    (tmp_path / "space.yaml").write_text(SPACE)
    study = tmp_path / "study.yaml"
    study.write_text(
        "name: c\nspace: space.yaml\nbudget: {mmacs: 50}\n"
        "proxy: {data: synthetic, train_images: 128, val_images: 64, epochs: 1, batch_size: 64}\n"
    )
    return study


def test_a_tiny_calibration_end_to_end_on_generated_data(tmp_path, capsys):
    study = tiny_study(tmp_path)
    args = ["calibrate", str(study), "--architectures", "4", "--seeds", "2", "--json", "--quiet"]
    out = tmp_path / "report"
    assert main([*args, "--out", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"kendall_tau", "spearman_rho", "within_width", "baselines", "noise_ceiling"} <= set(result)
    assert {"top_k_overlap", "regret", "notes"} <= set(result)
    for name in ("kendall_tau", "spearman_rho"):
        assert {"value", "ci_low", "ci_high"} <= set(result[name])
    assert set(result["baselines"]) == {"macs", "params"}
    assert result["architectures"] == 4 and result["high_fidelity"] == {"epochs": 2, "images": 128}
    assert result["zero_cost"]["seconds_per_architecture"] > 0  # timed by benchmarks, not asserted
    names = ["calibration.csv", "calibration.json", "calibration.md", "calibration.png"]
    assert sorted(p.name for p in out.iterdir()) == names
    assert (out / "calibration.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The noise decomposition a user can redo for their data: seed sd, its validation-sampling
    # part (smaller than the whole), paired-difference sd, at both fidelities.
    for fidelity in ("proxy", "high"):
        noise = result["noise"][fidelity]
        assert noise["seed_sd_dof"] == 4 and noise["paired_difference_dof"] == 6
        if noise["seed_sd"]:
            assert 0 <= noise["validation_sampling_sd"] <= 0.5
    assert "validation-sampling part" in (out / "calibration.md").read_text()
    # A rerun resumes from the storage: nothing is trained again.
    assert main([*args, "--out", str(out)]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["rows"] == result["rows"]
    # The calibration trains exactly its requests: no baseline is left queued for nobody.
    backend = optuna.storages.journal.JournalFileBackend(str(tmp_path / "c.journal"))
    trials = optuna.load_study(
        study_name="c-calibration", storage=optuna.storages.JournalStorage(backend)
    ).trials
    assert {t.state.name for t in trials} == {"COMPLETE"} and len(trials) == 2 * 4
    # Another calibration (other settings) never replaces this one: it names --out instead.
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    other = [*args[:-4], "--architectures", "3", "--seeds", "2", "--json", "--quiet", "--out", str(out)]
    assert main(other) == 2
    assert "give --out DIR" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_too_few_architectures_is_invalid_input(tmp_path):
    (tmp_path / "space.yaml").write_text(SPACE)
    study = tmp_path / "study.yaml"
    study.write_text("name: c\nspace: space.yaml\nproxy: {data: synthetic}\n")
    with pytest.raises(InvalidInput, match="--architectures 1 is too few"):
        from ulsam_nas.search.calibrate import plan_calibration

        plan_calibration(load_study_config(study), 1, 2)


def test_the_higher_fidelity_and_each_fidelitys_seeds_can_be_given(tmp_path, capsys):
    study = tiny_study(tmp_path)
    args = ["calibrate", str(study), "--architectures", "3", "--seeds", "2", "--proxy-seeds", "3"]
    args += ["--high-epochs", "3", "--high-images", "96", "--json", "--quiet", "--out", str(tmp_path / "r")]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["high_fidelity"] == {"epochs": 3, "images": 96}
    assert result["proxy_seeds"] == [0, 1, 2] and result["seeds"] == [0, 1]
    for row in result["rows"]:
        assert len(row["proxy_accuracies"]) == 3 and len(row["high_accuracies"]) == 2
        assert row["proxy_accuracy"] == pytest.approx(sum(row["proxy_accuracies"]) / 3)
    assert result["noise"]["proxy"]["seed_sd_dof"] == 3 * 2 and result["noise"]["high"]["seed_sd_dof"] == 3
    assert (
        "on 3 seeds, higher fidelity 3 epochs × 96 images on 2 seeds"
        in (tmp_path / "r" / "calibration.md").read_text()
    )
    assert main(["calibrate", str(study), "--high-images", "96"]) == 2
    assert "--high-images is given without --high-epochs" in capsys.readouterr().err
