"""Every output path of every command (``-o``, ``--out``, ``--report``) is checked when the
command line is read: a folder where a file goes, a file where a folder goes, a parent that is a
file, a place where nothing can be created.  One line, exit status 2, nothing written, no work
done (``verify`` would otherwise trace for seconds first)."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import pytest

from ulsam_nas.cli import build_parser, main
from ulsam_nas.cli.arguments import OUTPUT_TYPES, output_file, output_folder
from ulsam_nas.errors import InvalidInput
from ulsam_nas.output import check_output_path, write_atomic

# The least each command needs besides the output path (parsing stops at the bad path first).
MINIMAL_ARGS = {
    "table": [],
    "cost": ["se"],
    "verify": [],
    "explain": ["se"],
    "best": ["study.yaml"],
    "report": ["study.yaml"],
    "calibrate": ["study.yaml"],
}


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def _output_flags() -> list[tuple[str, str, bool]]:
    """(command, flag, is a folder) for every output path option of every command."""
    found = []
    for name, sub in _subparsers(build_parser()).items():
        for action in sub._actions:
            if action.type in OUTPUT_TYPES:
                found.append((name, action.option_strings[-1], action.type is output_folder))
    return found


OUTPUT_FLAGS = _output_flags()


def test_every_output_option_of_every_command_is_checked():
    """Every flag that names where a command writes uses one of the checked types, and every
    command that has one is covered here (a new command's output flag must join them)."""
    commands = {name for name, _, _ in OUTPUT_FLAGS}
    assert commands == set(MINIMAL_ARGS)
    for name, sub in _subparsers(build_parser()).items():
        for action in sub._actions:
            if {"-o", "--output", "--out", "--report"} & set(action.option_strings):
                assert action.type in OUTPUT_TYPES, (name, action.option_strings)


def _bad_paths(tmp_path: Path, folder: bool) -> dict[str, str]:
    a_file = tmp_path / "a_file"
    a_file.write_text("mine\n")
    a_folder = tmp_path / "a_folder"
    a_folder.mkdir()
    bad = {
        "a parent that is a file": str(a_file / "out"),
        "a grandparent that is a file": str(a_file / "sub" / "out"),
        "a place where nothing can be created": "/proc/ulsam-nas-test-out",
        "an empty path": "",
    }
    if folder:
        bad["a file where a folder goes"] = str(a_file)
    else:
        bad["a folder where a file goes"] = str(a_folder)
    return bad


@pytest.mark.parametrize(
    ("command", "flag", "folder"), OUTPUT_FLAGS, ids=[f"{c} {f}" for c, f, _ in OUTPUT_FLAGS]
)
def test_a_bad_output_path_is_refused_before_any_work(tmp_path, capsys, command, flag, folder):
    for what, path in _bad_paths(tmp_path, folder).items():
        before = sorted(p.name for p in tmp_path.rglob("*"))
        started = time.perf_counter()
        with pytest.raises(SystemExit) as exit_info:
            main([command, *MINIMAL_ARGS[command], flag, path])
        assert exit_info.value.code == 2, what
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, (what, err)
        assert f"argument {flag}" in err or flag in err, (what, err)
        assert time.perf_counter() - started < 2, f"{what}: work was done before the check"
        assert sorted(p.name for p in tmp_path.rglob("*")) == before, what
        assert (tmp_path / "a_file").read_text() == "mine\n"


def test_the_check_names_what_is_wrong(tmp_path):
    (tmp_path / "f").write_text("x")
    cases = [
        (str(tmp_path), False, "is a folder; give a file path"),
        (str(tmp_path / "f"), True, "is a file; give a folder"),
        (str(tmp_path / "f" / "x.md"), False, f"{tmp_path / 'f'} is a file, not a folder"),
        ("/proc/x.md", False, "cannot write in /proc"),
    ]
    for path, folder, words in cases:
        with pytest.raises(InvalidInput, match="^-o .*" + words.replace(".", r"\.")):
            check_output_path(path, "-o", folder=folder)


def test_good_paths_pass_and_leave_nothing_behind(tmp_path):
    assert (
        check_output_path(tmp_path / "new" / "deeper" / "out.md", "-o")
        == tmp_path / "new" / "deeper" / "out.md"
    )
    (tmp_path / "old.md").write_text("x")
    check_output_path(tmp_path / "old.md", "-o")
    check_output_path(tmp_path / "report", "--out", folder=True)
    (tmp_path / "report").mkdir()
    check_output_path(tmp_path / "report", "--out", folder=True)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["old.md", "report"]
    assert output_file(str(tmp_path / "x.md")) == str(tmp_path / "x.md")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_a_read_only_folder_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(InvalidInput, match="cannot write in"):
            check_output_path(locked / "out.md", "-o")
    finally:
        locked.chmod(0o700)


def test_an_output_through_a_symbolic_link_keeps_the_link(tmp_path):
    real = tmp_path / "real.md"
    real.write_text("old")
    link = tmp_path / "link.md"
    link.symlink_to(real)
    check_output_path(link, "-o")
    write_atomic(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


def test_the_default_report_folder_is_checked_too(tmp_path, monkeypatch, capsys):
    """``report`` without ``--out`` writes reports/<study name>/: a file there is refused the same way."""
    from tests.studies import small_study

    small_study(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports").write_text("not a folder")
    assert main(["report", "study.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "reports is a file, not a folder" in err, err
