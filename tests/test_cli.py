"""The command line as a user runs it: real processes, exit codes, stdout/stderr discipline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ulsam_nas.cli import main


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ulsam_nas", *args], capture_output=True, text=True, timeout=120
    )


def test_table_default_prints_the_paper_table():
    result = run("table")
    assert result.returncode == 0
    assert "| ULSAM" in result.stdout and "102.76" in result.stdout
    assert result.stderr == ""


def test_table_json_is_one_document_on_stdout():
    result = run("table", "--json")
    assert result.returncode == 0 and result.stderr == ""
    doc = json.loads(result.stdout)
    assert [r["module"] for r in doc["rows"]] == ["non_local", "a2", "se", "bam", "cbam", "ulsam"]


def test_cost_json_has_the_breakdown(capsys):
    assert (
        main(
            ["cost", "ulsam", "--channels", "64", "--height", "9", "--width", "7", "--groups", "8", "--json"]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["unit"] == "MAC" and doc["params"] == 5 * 64 + 3 * 8 and doc["macs"] == 2 * 64 * 63
    assert doc["params_formula"] == "5m + 3g" and doc["ops"]["softmax"] == 8 * 63


def test_output_file_is_written(tmp_path: Path, capsys):
    target = tmp_path / "t.csv"
    assert main(["table", "--format", "csv", "-o", str(target)]) == 0
    assert capsys.readouterr().out == ""
    assert target.read_text().startswith("Module,")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["table", "--groups", "3"], "groups=3 does not divide channels=512"),
        (["table", "--channels", "-4"], "'-4' is not positive"),
        (["table", "--height", "1.5"], "'1.5' is not an integer"),
        (["table", "--reduction", "1000"], "reduction=1000 is larger than channels=512"),
        (["cost", "lambda"], "unknown attention module 'lambda'"),
        (["table", "--modules", "all,bogus"], "unknown attention module 'bogus'"),
        (["table", "--sort", "flops"], "invalid choice: 'flops'"),
        (["table", "--ratio", "2"], "'2' is not in (0, 1]"),
        (["cost", "gc", "--ratio", "1/1024"], "ratio=1/1024 leaves ⌊m · ratio⌋ = 0 planes"),
        (["cost", "triplet", "--kernel-size", "6"], "kernel_size=6 is even"),
        (["cost", "simam", "--e-lambda", "0"], "'0' is not positive"),
        (["cost", "se", "--groups", "2"], "unknown option 'groups' for se"),
        (["table", "--format", "xml"], "invalid choice: 'xml'"),
        (["table", "--convention", "both"], "invalid choice: 'both'"),
        (["nonsense"], "invalid choice: 'nonsense'"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_partial_file(tmp_path: Path, capsys, args, needle):
    target = tmp_path / "out.md"
    argv = [*args, "-o", str(target)] if args[0] in ("table", "cost") else args
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse's own errors
        code = stop.code
    assert code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in captured.err
    assert captured.out == ""
    assert list(tmp_path.iterdir()) == []


def test_bad_input_in_a_real_process_prints_no_traceback():
    result = run("cost", "ulsam", "--groups", "5")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == (
        "ulsam-nas cost: error: groups=5 does not divide channels=512; "
        "allowed: 1, 2, 4, 8, 16, 32, 64, 128, 256, 512"
    )


def test_cost_backbone_json(capsys):
    argv = [
        "cost",
        "--backbone",
        "mobilenet_v1",
        "--width-mult",
        "0.5",
        "--plan",
        "insert@13:groups=8,replace@9",
        "--breakdown",
        "--json",
    ]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["plan"] == "replace@9:ulsam:groups=4,insert@13:ulsam:groups=8"
    assert doc["unit"] == "MAC" and isinstance(doc["params"], int)
    assert sum(row["macs"] for row in doc["layers"]) == doc["macs"]
    assert [row["name"] for row in doc["layers"]][9:12] == ["layer9", "ulsam_replacing_9", "layer10"]


def test_cost_backbone_text_prints_totals_and_the_breakdown(capsys):
    assert main(["cost", "--backbone", "mobilenet_v2", "--breakdown"]) == 0
    out = capsys.readouterr().out
    assert "300,774,272" in out and "3,504,872" in out and "| layer18" in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["cost"], "give either MODULE or --backbone"),
        (["cost", "ulsam", "--backbone", "mobilenet_v1"], "give either MODULE or --backbone"),
        (["cost", "--backbone", "mobilenet_v1", "--groups", "4"], "--groups applies to a MODULE"),
        (["cost", "ulsam", "--plan", "insert@3"], "--plan applies to --backbone"),
        (["cost", "--backbone", "mobilenet_v1", "--plan", "replace@4"], "replace@4:ulsam is not allowed"),
        (["cost", "--backbone", "mobilenet_v1", "--width-mult", "0"], "'0' is not positive"),
        (["cost", "--backbone", "mobilenet_v3"], "invalid choice: 'mobilenet_v3'"),
        (["cost", "--backbone", "mobilenet_v1", "--trace"], "--trace needs --breakdown"),
    ],
)
def test_bad_backbone_input_exits_2(capsys, args, needle):
    try:
        code = main(args)
    except SystemExit as stop:
        code = stop.code
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0]
