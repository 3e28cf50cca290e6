"""The command line as a user runs it: real processes, exit codes, stdout/stderr discipline."""

from __future__ import annotations

import json
import re
import shlex
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


# -- first contact -----------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parent.parent


def test_version_is_the_packages():
    from ulsam_nas import __version__

    result = run("--version")
    assert result.returncode == 0 and result.stdout == f"ulsam-nas {__version__}\n"


def test_the_bare_command_says_how_to_start(capsys, monkeypatch):
    """``ulsam-nas`` alone once printed only "the following arguments are required: COMMAND"."""
    from ulsam_nas.cli import START

    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: ulsam-nas") and START in out
    starts = [line.strip() for line in START.splitlines() if line.strip().startswith("ulsam-nas ")]
    assert len(starts) == 3
    monkeypatch.chdir(ROOT)
    for line in starts:  # each runs as printed
        assert main(shlex.split(line)[1:]) == 0, line
        capsys.readouterr()


def _help(*command: str) -> str:
    result = run(*command, "--help")
    assert result.returncode == 0 and result.stderr == ""
    return result.stdout


def test_help_is_plain_text_with_examples_that_run(tmp_path, capsys, monkeypatch):
    """Every command's help ends with examples; no raw reStructuredText; the examples of the
    cheap commands (table, cost) run as printed (output files go to a temporary folder)."""
    from ulsam_nas.cli import COMMANDS

    top = _help()
    assert "``" not in top and "start here" in top
    monkeypatch.chdir(ROOT)
    ran = 0
    for name, (_, examples, _, _) in COMMANDS.items():
        text = _help(name)
        assert "``" not in text and "\nexamples:\n  ulsam-nas " + name in text, name
        for line in re.sub(r"\\\n\s*", " ", examples).splitlines():
            argv = shlex.split(line.split("  ", 2)[1] if line.startswith("  ") else line)
            if not argv or argv[1] not in ("table", "cost"):
                continue
            argv = [str(tmp_path / a) if a.endswith(".tex") else a for a in argv]
            assert main(argv[1:]) == 0, line
            capsys.readouterr()
            ran += 1
    assert ran >= 12


def test_cost_help_covers_every_way_to_name_a_network_and_a_plan():
    from ulsam_nas.backbones.network import BACKBONES

    text = " ".join(_help("cost").split())
    for backbone in BACKBONES:
        assert backbone in text
    for words in (
        "--model",
        "insert",
        "replace",
        "swap",
        "MODULE none removes it",
        "* (every index",
        "module path",
    ):
        assert words in text, words
