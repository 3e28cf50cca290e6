"""Compile LaTeX tables with pdflatex inside a minimal document, as a paper would include them.

Skips when pdflatex is missing, unless REQUIRE_LATEX=1 (CI installs Debian's texlive packages
and sets it, so there the test cannot skip)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ulsam_nas.latex import PACKAGES


def compile_tables(folder: Path, tables: list[Path]) -> Path:
    """Write a document that \\input{}s every table and run pdflatex on it; returns the PDF."""
    if shutil.which("pdflatex") is None:
        message = "pdflatex is not installed (Debian: texlive-latex-base, texlive-latex-recommended)"
        if os.environ.get("REQUIRE_LATEX") == "1":
            pytest.fail(message + " and REQUIRE_LATEX=1")
        pytest.skip(message)
    for table in tables:
        assert table.read_text().isascii(), f"{table.name} has non-ASCII characters"
    packages = "".join(f"\\usepackage{{{name}}}\n" for name in PACKAGES)
    inputs = "".join(
        f"\\noindent\\resizebox{{\\textwidth}}{{!}}{{\\input{{{t.resolve()}}}}}\n\n" for t in tables
    )
    document = folder / "tables.tex"
    document.write_text(
        "\\documentclass{article}\n\\usepackage{graphicx}\n"
        + packages
        + "\\begin{document}\n"
        + inputs
        + "\\end{document}\n"
    )
    run = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", document.name],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-3000:]
    pdf = folder / "tables.pdf"
    assert pdf.stat().st_size > 0
    return pdf
