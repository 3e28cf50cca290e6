"""A study states whether its answer replicates under another seed base, and no run replaces
outputs that a run with other settings wrote (report folders, best files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ulsam_nas.cli import main

SPACE = """
backbone: mobilenet_v1
stem: small
width_mults: [0.25]
positions:
  - {index: 9, actions: [replace]}
groups: [1, 4]
max_modules: 1
"""


def study(tmp_path: Path, name: str = "r", images: int = 128) -> Path:
    (tmp_path / "space.yaml").write_text(SPACE)
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"name: {name}\nspace: space.yaml\nbudget: {{mmacs: 12.5}}\n"
        f"proxy: {{data: synthetic, train_images: {images}, val_images: 64, epochs: 1, batch_size: 64, "
        "precise_bn: 64}\n"
        "schedule: {confirm: {top_k: 2, seeds: 5}, reference_seeds: 2}\ntrials: 3\n"
    )
    return path


def test_replicate_runs_the_study_under_another_seed_base_and_states_the_verdict(tmp_path, capsys):
    path = study(tmp_path)
    assert main(["search", str(path), "--quiet"]) == 0
    assert main(["replicate", str(path), "--seed", "0", "--quiet"]) == 2  # the study's own seed
    capsys.readouterr()
    assert main(["replicate", str(path), "--seed", "100", "--quiet", "--json"]) == 0
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["replica"] == "r-seed100" and isinstance(verdict["replicates"], bool)
    if verdict["original_recommended"] != verdict["replica_recommended"]:
        assert verdict["comparison"]["seeds"] == 5  # paired over the replica's confirmation seeds
    assert "seed base 100" in verdict["sentence"]
    assert main(["best", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["replication"] == verdict
    assert main(["best", str(path)]) == 0
    assert "Replication: with seed base 100" in capsys.readouterr().out
    # The replica's own answer is its own: a replication evaluation never enters its selection.
    assert (
        main(["best", "--storage", str(tmp_path / "r.journal"), "--study-name", "r-seed100", "--json"]) == 0
    )
    replica = json.loads(capsys.readouterr().out)
    assert replica["recommended_candidate"] == verdict["replica_recommended"]


def test_an_unfinished_study_cannot_be_replicated(tmp_path, capsys):
    path = study(tmp_path)
    assert main(["search", str(path), "--quiet", "--trials", "1", "--no-schedule"]) == 0
    assert main(["replicate", str(path), "--seed", "100", "--quiet"]) == 2
    assert "no confirmed recommendation" in capsys.readouterr().err


def test_report_and_best_refuse_to_replace_what_other_settings_wrote(tmp_path, capsys):
    first = study(tmp_path, "a")
    assert main(["search", str(first), "--quiet", "--no-schedule", "--trials", "2"]) == 0
    out, best = tmp_path / "report", tmp_path / "best.md"
    assert main(["report", str(first), "--out", str(out)]) == 0
    assert main(["best", str(first), "-o", str(best)]) == 0
    assert main(["report", str(first), "--out", str(out)]) == 0  # the same study: replaced
    (tmp_path / "other").mkdir()
    second = study(tmp_path / "other", "a", images=192)  # same name, other settings
    assert main(["search", str(second), "--quiet", "--no-schedule", "--trials", "2"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}, best.read_bytes()
    capsys.readouterr()
    assert main(["report", str(second), "--out", str(out)]) == 2
    assert "give --out DIR" in capsys.readouterr().err
    assert main(["best", str(second), "-o", str(best)]) == 2
    assert "give another -o FILE" in capsys.readouterr().err
    assert ({p.name: p.read_bytes() for p in out.iterdir()}, best.read_bytes()) == before
    unrelated = tmp_path / "notes.md"
    unrelated.write_text("mine\n")
    assert main(["best", str(second), "-o", str(unrelated)]) == 0  # a file best did not write is the user's


@pytest.mark.parametrize("command", ["replicate"])
def test_replicate_help_names_the_seed(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "--seed" in capsys.readouterr().out


def test_replicate_at_a_longer_training_states_the_paired_difference_and_resumes(tmp_path, capsys):
    import optuna

    path = study(tmp_path)
    assert main(["search", str(path), "--quiet"]) == 0
    assert main(["best", str(path), "--json"]) == 0
    best = json.loads(capsys.readouterr().out)
    args = ["replicate", str(path), "--epochs", "2", "--seeds", "2", "--quiet", "--json"]
    if best["trade_off"] is None:  # the recommendation is the reference (or nothing to compare)
        assert main(args) == 2
        assert "there is no difference to check" in capsys.readouterr().err
        return
    assert main(args) == 0
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["study"] == "r-e2iall-seed2000" and verdict["seeds"] == [2000, 2001]
    assert verdict["fidelity"] == {"epochs": 2, "images": None}
    differences = [
        a - b for a, b in zip(verdict["recommended_accuracies"], verdict["reference_accuracies"], strict=True)
    ]
    assert verdict["mean"] == pytest.approx(sum(differences) / 2)
    assert verdict["holds"] in ("holds", "reversed", "unresolved")
    assert "2 fresh paired seeds" in verdict["sentence"]
    # A third seed trains one more pair only: the first two are read back from the companion study.
    assert main([*args[:-4], "--seeds", "3", "--quiet", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["recommended_accuracies"][:2] == verdict["recommended_accuracies"]
    companion = optuna.load_study(
        study_name="r-e2iall-seed2000",
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(tmp_path / "r.journal"))
        ),
    )
    assert len(companion.trials) == 6  # 3 seeds × 2 candidates, one trial each
    assert main(["best", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["fidelity_check"] == again
    assert main(["report", str(path), "--out", str(tmp_path / "report")]) == 0
    page = (tmp_path / "report" / "index.html").read_text()
    assert 'id="fidelity-check">At a longer training: trained 2 epochs over all images' in page


def test_the_longer_training_verdict_needs_an_interval_that_excludes_zero():
    from ulsam_nas.search.replicate import _holds

    assert _holds(0.01, 0.002, 0.02, 0.005) == "holds"
    assert _holds(-0.01, -0.02, -0.002, 0.005) == "reversed"
    assert _holds(0.01, -0.002, 0.02, 0.005) == "unresolved"
    assert _holds(0.01, None, None, 0.005) == "unresolved"


def test_replicate_needs_a_seed_or_a_longer_training(tmp_path, capsys):
    path = study(tmp_path)
    assert main(["replicate", str(path)]) == 2
    assert "--seed" in capsys.readouterr().err
    assert main(["replicate", str(path), "--images", "100"]) == 2
    assert "--images is given without --epochs" in capsys.readouterr().err
