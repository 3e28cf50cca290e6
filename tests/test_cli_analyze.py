"""``ulsam-nas cost --model MODULE:FACTORY --input-size C,H,W``: any network from the user's
code, loaded from the current directory, costed in closed form; bad input is one line, exit 2."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from ulsam_nas import analyze
from ulsam_nas.cli import main

NETS = """
import torch
import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        out += identity
        return F.relu(out)


class ResNetLike(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.layer1 = nn.Sequential(Block(width, width, 1), Block(width, width, 1))
        self.layer2 = nn.Sequential(Block(width, 2 * width, 2), Block(2 * width, 2 * width, 1))
        self.layer3 = nn.Sequential(Block(2 * width, 4 * width, 2), Block(4 * width, 4 * width, 1))
        self.fc = nn.Linear(4 * width, 10)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def resnet_like():
    return ResNetLike()


def with_elu():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ELU(), nn.Conv2d(4, 4, 1))


def not_a_model():
    return 42


def broken():
    raise RuntimeError("weights missing")


NOT_CALLABLE = 3
"""


@pytest.fixture
def nets(tmp_path, monkeypatch):
    """A module of factories, importable only from the current directory (a fresh name, so no
    earlier import is reused)."""
    name = f"cli_nets_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(NETS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    yield name
    sys.modules.pop(name, None)


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    try:
        code = main(["cost", *args])
    except SystemExit as stop:
        code = int(stop.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


PLAN = "insert@layer3.1:ulsam:groups=4,replace@layer2.1:eca"


def test_model_cost_equals_the_python_api(nets, capsys):
    code, out, err = run_main(
        capsys, "--model", f"{nets}:resnet_like", "--input-size", "3,32,32", "--plan", PLAN, "--json"
    )
    assert code == 0 and err == ""
    doc = json.loads(out)
    module = sys.modules[nets]
    expected = analyze(module.resnet_like(), (3, 32, 32)).cost(PLAN)
    assert (doc["params"], doc["macs"], doc["ops"]) == (expected.params, expected.macs, dict(expected.ops))
    assert doc["plan"] == "replace@layer2.1:eca:kernel_size=3,insert@layer3.1:ulsam:groups=4"
    assert doc["input_size"] == [3, 32, 32] and doc["remainder"] == []


def test_input_size_may_be_three_arguments_and_text_is_printed(nets, capsys):
    code, out, _ = run_main(capsys, "--model", f"{nets}:resnet_like", "--input-size", "3", "32", "32")
    assert code == 0
    expected = analyze(sys.modules[nets].resnet_like(), (3, 32, 32)).cost()
    assert f"params {expected.params:>15,}" in out and f"MACs   {expected.macs:>15,}" in out
    assert "3×32×32 input, plan: none (the network as given); exact convention" in out


def test_positions_are_listed(nets, capsys):
    code, out, _ = run_main(
        capsys, "--model", f"{nets}:resnet_like", "--input-size", "3,32,32", "--positions"
    )
    assert code == 0
    assert "| layer3.1 " in out and "no: its input is 16×16×16 and its output 32×8×8" in out
    code, out, _ = run_main(
        capsys, "--model", f"{nets}:resnet_like", "--input-size", "3,32,32", "--positions", "--json"
    )
    positions = {p["path"]: p for p in json.loads(out)["positions"]}
    assert positions["layer3.1"]["replace"] and positions["layer3.1"]["out_shape"] == [32, 8, 8]


def test_breakdown_rows_sum_to_the_totals(nets, capsys):
    args = ("--model", f"{nets}:resnet_like", "--input-size", "3,32,32", "--plan", PLAN, "--breakdown")
    code, out, _ = run_main(capsys, *args, "--json", "--convention", "paper")
    doc = json.loads(out)
    assert code == 0 and doc["convention"] == "paper"
    assert sum(r["macs"] for r in doc["layers"]) == doc["macs"]
    assert sum(r["params"] for r in doc["layers"]) == doc["params"]
    assert [r["name"] for r in doc["layers"] if r["inserted"]] == ["layer2.1", "layer3.1.attention"]
    code, out, _ = run_main(capsys, *args)
    assert re.search(r"\| layer3\.1\.attention +\| insert@layer3\.1:ulsam:groups=4 ", out)
    assert re.search(r"\| layer2\.1\.conv1 +\| Conv2d \(replaced\) ", out)


def test_the_remainder_is_refused_or_shown(nets, capsys):
    args = ("--model", f"{nets}:with_elu", "--input-size", "3,8,8")
    code, out, err = run_main(capsys, *args)
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        "ulsam-nas cost: error: no closed form for 1 operator(s) of 1 type(s):",
        "  ELU ×1, first at 1 (output 4×8×8)",
        "  --allow-remainder costs the rest and lists these as a remainder, left out of the totals and "
        "marked so",
    ]
    code, out, _ = run_main(capsys, *args, "--allow-remainder")
    assert code == 0
    assert (
        "REMAINDER: 1 operator(s) without a closed form are NOT in these totals:\n"
        "    ELU ×1, first at 1 (output 4×8×8)\n" in out
    )
    code, out, _ = run_main(capsys, *args, "--allow-remainder", "--plan", "replace@1:simam")
    assert code == 0 and "REMAINDER" not in out  # the module holding it is replaced


def test_a_total_with_a_remainder_says_it_is_incomplete_everywhere(nets, capsys):
    """Text, JSON and breakdown: a total that leaves operators out never looks whole."""
    args = ("--model", f"{nets}:with_elu", "--input-size", "3,8,8", "--allow-remainder")
    code, out, _ = run_main(capsys, *args, "--breakdown")
    assert code == 0
    macs_line = next(line for line in out.splitlines() if line.lstrip().startswith("MACs "))
    assert "INCOMPLETE: 1 operator(s) without a closed form are not in it" in macs_line
    assert re.search(r"\| 1 +\| ELU .*\| not costed \|", out)
    code, out, _ = run_main(capsys, *args, "--breakdown", "--json")
    doc = json.loads(out)
    assert doc["complete"] is False and doc["ops"]["uncosted_ops"] == 1
    elu = next(r for r in doc["layers"] if r["what"] == "ELU")
    assert elu["macs"] is None and elu["complete"] is False
    assert all(r["complete"] for r in doc["layers"] if r["what"] != "ELU")
    code, out, _ = run_main(capsys, *args, "--plan", "replace@1:simam", "--json")
    assert json.loads(out)["complete"] is True
    code, out, _ = run_main(capsys, *args[:-1])  # the network is refused without the flag
    assert code == 2


@pytest.mark.parametrize(
    "args",
    [["cost", "se", "--json"], ["cost", "--backbone", "mobilenet_v2", "--plan", "insert@*:eca", "--json"]],
)
def test_closed_forms_are_complete_in_json(capsys, args):
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["complete"] is True


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (
            ["--model", "no_colon", "--input-size", "3,8,8"],
            "model 'no_colon' is malformed; expected MODULE:FACTORY",
        ),
        (
            ["--model", "no_such_module_q7:f", "--input-size", "3,8,8"],
            "cannot import 'no_such_module_q7' (ModuleNotFoundError",
        ),
        (["--model", "{nets}:missing", "--input-size", "3,8,8"], "has no attribute 'missing'"),
        (["--model", "{nets}:NOT_CALLABLE", "--input-size", "3,8,8"], "'NOT_CALLABLE' is not callable"),
        (
            ["--model", "{nets}:not_a_model", "--input-size", "3,8,8"],
            "not_a_model() returned int, not a torch.nn.Module",
        ),
        (
            ["--model", "{nets}:broken", "--input-size", "3,8,8"],
            "broken() failed: RuntimeError: weights missing",
        ),
        (["--model", "{nets}:resnet_like"], "--model needs --input-size C,H,W"),
        (["--model", "{nets}:resnet_like", "--input-size", "3,32"], "--input-size '3,32' is invalid"),
        (["--model", "{nets}:resnet_like", "--input-size", "3,x,32"], "allowed: C,H,W or C H W"),
        (
            ["--model", "m:f", "--input-size", "3,8,8", "--resolution", "64"],
            "--resolution applies to --backbone",
        ),
        (["--model", "m:f", "--input-size", "3,8,8", "--groups", "4"], "--groups applies to a MODULE"),
        (["ulsam", "--model", "m:f"], "give either MODULE or --backbone or --model"),
        (["--backbone", "mobilenet_v1", "--positions"], "--positions applies to --model"),
        (
            ["--model", "{nets}:resnet_like", "--input-size", "3,32,32", "--plan", "insert@layer5:se"],
            "'layer5' is not a submodule path of this model; allowed: stem, stem.0, stem.1",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(nets, capsys, args, needle):
    code, out, err = run_main(capsys, *[a.format(nets=nets) for a in args])
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and len(lines) == 1
    assert needle in lines[0]


def test_a_syntax_error_in_the_users_module_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "cli_broken_q7.py").write_text("def f(:\n")
    monkeypatch.chdir(tmp_path)
    code, _, err = run_main(capsys, "--model", "cli_broken_q7:f", "--input-size", "3,8,8")
    assert code == 2 and "importing 'cli_broken_q7' failed: SyntaxError" in err
    sys.modules.pop("cli_broken_q7", None)


def test_the_installed_command_imports_from_the_current_directory(nets, tmp_path):
    command = shutil.which("ulsam-nas", path=str(Path(sys.executable).parent))
    if command is None:
        pytest.skip("the ulsam-nas console script is not installed beside this Python")
    good = subprocess.run(
        [command, "cost", "--model", f"{nets}:resnet_like", "--input-size", "3,32,32", "--plan", PLAN],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert good.returncode == 0 and good.stderr == "" and "insert@layer3.1:ulsam:groups=4" in good.stdout
    bad = subprocess.run(
        [command, "cost", "--model", f"{nets}:not_a_model", "--input-size", "3,32,32"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert bad.returncode == 2 and bad.stdout == "" and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


# -- the network as the user names it ----------------------------------------------------------
def test_a_factory_takes_arguments_as_json_or_pairs(nets, capsys):
    base = ("--model", f"{nets}:ResNetLike", "--input-size", "3,32,32", "--json")
    for given in ("width=4", '{"width": 4}'):
        code, out, _ = run_main(capsys, *base, "--model-args", given)
        expected = analyze(sys.modules[nets].ResNetLike(width=4), (3, 32, 32)).cost()
        doc = json.loads(out)
        assert code == 0 and (doc["params"], doc["macs"]) == (expected.params, expected.macs), given
        assert doc["model_args"] == {"width": 4}
    code, out, _ = run_main(capsys, *base[:-1], "--model-args", "width=4")
    assert out.startswith(f"{nets}:ResNetLike(width=4) (ResNetLike)")


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ("width", "'width' is not KEY=VALUE"),
        ("{width: 4}", "is not valid JSON"),
        ("[4]", "is not KEY=VALUE"),
        ("depth=3", "ResNetLike(depth=3) failed: TypeError"),
    ],
)
def test_bad_factory_arguments_are_one_line(nets, capsys, given, words):
    code, _, err = run_main(
        capsys, "--model", f"{nets}:ResNetLike", "--input-size", "3,32,32", "--model-args", given
    )
    assert code == 2 and err.count("\n") == 1 and words in err, err


def test_a_model_file_path_is_a_source_too(nets, capsys, tmp_path):
    by_module = run_main(capsys, "--model", f"{nets}:resnet_like", "--input-size", "3,32,32", "--json")
    by_file = run_main(
        capsys, "--model", f"{tmp_path / nets}.py:resnet_like", "--input-size", "3,32,32", "--json"
    )
    assert by_module[0] == by_file[0] == 0
    assert {k: v for k, v in json.loads(by_module[1]).items() if k != "model"} == {
        k: v for k, v in json.loads(by_file[1]).items() if k != "model"
    }
    code, _, err = run_main(capsys, "--model", "missing.py:f", "--input-size", "3,8,8")
    assert code == 2 and "missing.py is not a file" in err


@pytest.mark.tracer
def test_trace_checks_a_models_totals_against_every_counter(nets, capsys, tmp_path):
    """``--trace`` with ``--model`` (a file path and factory arguments, rebuilt in each counter's
    own process): the closed form projected onto each counter equals its trace."""
    args = (
        "--model",
        f"{tmp_path / nets}.py:ResNetLike",
        "--model-args",
        "width=4",
        "--input-size",
        "3,16,16",
    )
    code, out, _ = run_main(capsys, *args, "--plan", PLAN, "--trace", "--json")
    rows = json.loads(out)["counters"]
    assert code == 0 and {r["counter"] for r in rows} >= {"torch", "fvcore", "ptflops_aten", "fvcore params"}
    assert all(r["match"] for r in rows), rows
    code, out, _ = run_main(capsys, *args, "--trace")
    assert code == 0 and "Checked against the counters" in out and "DIFFERENT" not in out
    code, _, err = run_main(capsys, *args, "--trace", "--allow-remainder")
    assert code == 2 and "drop --allow-remainder" in err
