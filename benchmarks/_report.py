"""Benchmarks write their own section of reports/benchmarks.md, leaving the others alone."""

from __future__ import annotations

import re
from pathlib import Path

from ulsam_nas.output import write_atomic

REPORT = Path(__file__).resolve().parent.parent / "reports" / "benchmarks.md"
HEADER = "# Benchmarks\n\nEach section is written by the script it names; rerun it to refresh the section.\n"


def write_section(name: str, body: str) -> Path:
    text = REPORT.read_text() if REPORT.exists() else HEADER
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    section = f"{start}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    text = (
        pattern.sub(lambda _: section, text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + section + "\n"
    )
    write_atomic(REPORT, text)
    return REPORT
