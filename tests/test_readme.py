"""The README's example output is what the tool prints now.

A ```` ```text ```` block whose first line is ``$ ulsam-nas ARGS...`` is a transcript: each
``$ ulsam-nas`` line is a command run from the repository root, and the lines up to the next
``$`` line (or the block's end) are its output, stdout then stderr. Every cheap command (``table``,
and ``cost`` without ``--trace``, including ``cost --model examples.mynets:...``) is run here
in-process through ``ulsam_nas.cli.main`` and its output compared with the block:

* a plain block must equal the output line for line (trailing whitespace and trailing blank
  lines ignored);
* a block preceded by the line ``<!-- abridged -->`` shows a selection: every shown line must
  appear in the real output, in the same order; a line ``...`` only marks where lines were left
  out and is not compared.

Commands that train, trace with FLOP counters, or need a study's journal (``search``, ``best``,
``report``, ``verify``, ``explain``, ``calibrate``, ``replicate``, ``cost --trace``) are listed
but not run.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from ulsam_nas.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PROMPT = "$ ulsam-nas "
ABRIDGED = "<!-- abridged -->"
ELISION = "..."
CHEAP_COMMANDS = {"table", "cost"}
EXPENSIVE_OPTIONS = {"--trace"}
FILE_OPTIONS = {"-o", "--output"}  # would write into the repository
# The README's cheap transcripts when this test was written: table (2), cost of one module (2),
# cost --model examples.mynets:resnet_like (3). Fewer means the parser lost some.
MIN_CHECKED = 7


@dataclass(frozen=True)
class Example:
    """One ``$ ulsam-nas ...`` command of a README transcript and the output shown for it."""

    command: str  # the command line as written, without "$ "
    argv: tuple[str, ...]  # its arguments after "ulsam-nas"
    shown: tuple[str, ...]  # the output lines shown under it
    abridged: bool
    line: int  # README line of the command, 1-based

    @property
    def cheap(self) -> bool:
        options = set(self.argv)
        return (
            bool(self.argv)
            and self.argv[0] in CHEAP_COMMANDS
            and not options & EXPENSIVE_OPTIONS
            and not options & FILE_OPTIONS
        )


def text_blocks(lines: list[str]) -> list[tuple[int, list[str], bool]]:
    """Every ```text block: (index of its first body line, body lines, marked abridged)."""
    blocks = []
    i = 0
    while i < len(lines):
        if lines[i].strip() != "```text":
            i += 1
            continue
        before = next((line.strip() for line in reversed(lines[:i]) if line.strip()), "")
        abridged = before == ABRIDGED
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        blocks.append((i + 1, lines[i + 1 : end], abridged))
        i = end + 1
    return blocks


def readme_examples(text: str) -> list[Example]:
    """The commands of every ```text block that starts with ``$ ulsam-nas``."""
    examples = []
    for start, body, abridged in text_blocks(text.splitlines()):
        if not body or not body[0].startswith(PROMPT):
            continue
        commands = [k for k, line in enumerate(body) if line.startswith(PROMPT)]
        for k, next_k in zip(commands, [*commands[1:], len(body)], strict=True):
            command = body[k][2:].strip()
            examples.append(
                Example(
                    command=command,
                    argv=tuple(shlex.split(command)[1:]),
                    shown=tuple(body[k + 1 : next_k]),
                    abridged=abridged,
                    line=start + k + 1,
                )
            )
    return examples


def tidy(lines: list[str] | tuple[str, ...]) -> list[str]:
    """Trailing whitespace per line and trailing blank lines dropped."""
    out = [line.rstrip() for line in lines]
    while out and not out[-1]:
        out.pop()
    return out


def first_missing(shown: list[str], real: list[str]) -> str | None:
    """The first shown line (``...`` skipped) not found in ``real`` after the previous one."""
    rest = iter(real)
    for line in shown:
        if line == ELISION:
            continue
        if not any(line == candidate for candidate in rest):
            return line
    return None


EXAMPLES = readme_examples(README.read_text(encoding="utf-8"))
CHECKED = [example for example in EXAMPLES if example.cheap]


def run_cli(argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    try:
        code = main(list(argv))
    except SystemExit as stop:  # argparse rejected the command line
        code = stop.code if isinstance(stop.code, int) else 1
    captured = capsys.readouterr()
    return code, (captured.out + captured.err).splitlines()


@pytest.mark.parametrize("example", CHECKED, ids=[example.command for example in CHECKED])
def test_readme_output_is_the_real_output(example, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "path", list(sys.path))  # `cost --model` puts the cwd on the path
    code, real = run_cli(example.argv, capsys)
    shown = tidy(example.shown)
    where = f"README.md line {example.line}: $ {example.command}"
    error_shown = bool(shown) and shown[-1].startswith(f"ulsam-nas {example.argv[0]}: error:")
    assert code == (2 if error_shown else 0), f"{where}: exit status {code}\n" + "\n".join(real)
    if example.abridged:
        missing = first_missing(shown, tidy(real))
        assert missing is None, f"{where}: shown line not in the real output (in order):\n{missing}"
    else:
        assert shown == tidy(real), f"{where}: the README block differs from the real output"


def test_the_readme_transcripts_are_found():
    """A parser bug must not make the test above pass by checking nothing."""
    assert len(CHECKED) >= MIN_CHECKED, [example.command for example in CHECKED]
    assert all(example.shown for example in EXAMPLES), "a command with no output shown"
    assert sum(1 for example in CHECKED if "--model" in example.argv) >= 3
    assert any(example.argv[:1] == ("table",) and not example.abridged for example in CHECKED)
    assert any(example.abridged for example in CHECKED)
    # Every transcript line in a text block belongs to a parsed example.
    prompts = sum(
        1
        for _, body, _ in text_blocks(README.read_text(encoding="utf-8").splitlines())
        for line in body
        if line.startswith(PROMPT)
    )
    assert prompts == len(EXAMPLES)


def test_the_abridged_rule():
    real = ["a", "b", "c", "d"]
    assert first_missing(["a", ELISION, "c", "d"], real) is None
    assert first_missing(["b", "d"], real) is None
    assert first_missing(["c", "b"], real) == "b"  # out of order
    assert first_missing(["a", "x"], real) == "x"


def test_the_parser_splits_a_block_into_commands():
    text = "\n".join(
        [
            "```text",
            "$ ulsam-nas cost ulsam --groups 3",
            "one",
            "",
            "two",
            "$ ulsam-nas search studies/default.yaml",
            "three",
            "```",
            ABRIDGED,
            "```text",
            '$ ulsam-nas cost --plan "insert@1:eca" --trace',
            "four",
            "```",
        ]
    )
    first, second, third = readme_examples(text)
    assert (first.argv, first.shown, first.abridged, first.line) == (
        ("cost", "ulsam", "--groups", "3"),
        ("one", "", "two"),
        False,
        2,
    )
    assert (first.cheap, second.cheap, third.cheap) == (True, False, False)
    assert third.argv == ("cost", "--plan", "insert@1:eca", "--trace") and third.abridged
