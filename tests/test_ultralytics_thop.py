"""ultralytics-thop (the maintained thop, 2.x) as a counter: it installs the import name ``thop``
as the frozen thop of the dev extra does, so it runs from a folder of its own, in its own process
(scripts/_venv.sh installs it; CI requires it: REQUIRE_ULTRALYTICS_THOP=1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import ulsam_nas
from ulsam_nas.cli import main
from ulsam_nas.cost.conventions import COUNTERS, train_mode_total
from ulsam_nas.verify import Case, NetworkCase, attention_cases, explain
from ulsam_nas.verify.runner import trace_in_subprocesses
from ulsam_nas.verify.tracers import counter_version, ultralytics_thop_folder

pytestmark = pytest.mark.tracer

INSTALLED = counter_version("ultralytics_thop") is not None
needs_it = pytest.mark.skipif(
    not INSTALLED and os.environ.get("REQUIRE_ULTRALYTICS_THOP") != "1",
    reason=f"ultralytics-thop is not installed in {ultralytics_thop_folder()} (scripts/_venv.sh installs it)",
)

NETWORKS = [
    NetworkCase("mobilenet_v2", 0.5, "insert@3:ulsam:groups=4,replace@9:non_local", 64, 10),
    NetworkCase("mobilenet_v3_small", 0.75, "swap@*:gc", 48, 100, in_channels=1),
    NetworkCase("resnet18", 0.25, "insert@2:a2,insert@5:ca", 33, 10, stem="small"),
]


@needs_it
def test_the_folder_holds_ultralytics_thop_2():
    assert (counter_version("ultralytics_thop") or "").startswith("2.")


@needs_it
def test_traced_totals_equal_the_projection_on_modules_and_backbones():
    # Every module at the paper's shape and one random shape and config, three networks with
    # plans; batch 2, per-sample totals.
    cases = [*attention_cases(None, 1, seed=11), *NETWORKS]
    traced = trace_in_subprocesses(["ultralytics_thop"], cases, 2)["ultralytics_thop"]
    differing = []
    for case, result in zip(cases, traced, strict=True):
        cost = case.cost()
        expected = COUNTERS["ultralytics_thop"].project(cost)
        if result.get("traced") != expected or result.get("params") != cost.params:
            differing.append((case, result, expected, cost.params))
    assert differing == []


@needs_it
def test_it_counts_the_matmuls_the_frozen_thop_drops():
    # Non-local's two affinity products: counted by ultralytics-thop, not by thop 0.1.1.
    case = Case("non_local", 64, 9, 7)
    (result,) = trace_in_subprocesses(["ultralytics_thop"], [case], 1)["ultralytics_thop"]
    cost = case.cost()
    matmul = cost.macs_by["matmul"]
    assert matmul == 2 * 32 * 63 * 63
    assert result["traced"] == cost.macs_by["conv"] + matmul + 4 * cost.ops["batch_norm"]
    assert result["traced"] - COUNTERS["thop"].project(cost) == matmul


@needs_it
def test_the_calling_process_keeps_the_frozen_thop():
    import thop as frozen

    folder = ultralytics_thop_folder().resolve()

    def inside(path: object) -> bool:
        return bool(path) and Path(str(path)).resolve().is_relative_to(folder)

    # explain traces with every counter, each in its own process, as verify does
    ex = explain(Case("a2", 32, 6, 5))
    assert next(c for c in ex.counters if c["counter"] == "ultralytics_thop")["match"]
    assert sys.modules["thop"] is frozen and not inside(frozen.__file__)
    assert frozen.__version__.startswith("0.1")
    assert not any(inside(getattr(m, "__file__", None)) for m in list(sys.modules.values()))
    assert not any(inside(p) for p in sys.path)


@needs_it
def test_train_mode_counts_the_same():
    # thop.profile puts the model in eval mode itself: the published-readings rule.
    code = (
        "import json, sys, torch, ulsam_nas\n"
        f"sys.path.insert(0, {str(ultralytics_thop_folder())!r})\n"
        "import thop\n"
        "assert thop.__version__.startswith('2.'), thop.__file__\n"
        "totals = []\n"
        "for name in ('ca', 'triplet', 'gc'):\n"
        "    m = ulsam_nas.create_attention(name, 32).train()\n"
        "    totals.append(thop.profile(m, inputs=(torch.randn(2, 32, 10, 9),), verbose=False)[0] / 2)\n"
        "    assert m.training\n"
        "print(json.dumps(totals))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    totals = json.loads(out.strip().splitlines()[-1])
    for name, total in zip(("ca", "triplet", "gc"), totals, strict=True):
        cost = ulsam_nas.attention_cost(name, 32, 10, 9)
        assert (
            total == train_mode_total(cost, "ultralytics_thop") == COUNTERS["ultralytics_thop"].project(cost)
        )


def test_without_the_folder_verify_and_explain_say_so_in_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("ULSAM_NAS_ULTRALYTICS_THOP", str(tmp_path / "nothing here"))
    code = main(["verify", "--modules", "simam", "--samples", "0", "--json"])
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    said = [line for line in captured.err.splitlines() if "ultralytics" in line]
    assert code == 0 and doc["all_match"]
    assert len(said) == 1 and "ultralytics-thop is not installed in" in said[0] and "nothing here" in said[0]
    assert [line for line in doc["absent"] if line.startswith("ultralytics_thop: ")] == [
        said[0][len("verify: ") :]
    ]
    assert "ultralytics_thop" not in {row["counter"] for row in doc["known_different"]}
    assert main(["explain", "simam", "--no-trace", "--quiet"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "not installed" in line]
    assert len(lines) == 1 and lines[0].startswith("  not run: ultralytics_thop: ultralytics-thop is not")
