"""LaTeX output: ASCII only, booktabs, formulas in math mode, and it compiles with pdflatex."""

from __future__ import annotations

import pytest

from tests.latex_compile import compile_tables
from ulsam_nas.cli import main
from ulsam_nas.latex import latex_math, latex_text
from ulsam_nas.output import render_frame
from ulsam_nas.tables import overhead_table


@pytest.mark.parametrize(
    ("text", "latex"),
    [
        ("✓", r"\checkmark{}"),
        ("✗", "--"),
        ("A²-Net", "A$^{2}$-Net"),
        ("FLOPs (×10⁶)", r"FLOPs ($\times$10$^{6}$)"),
        ("50% of x_1 & {y}", r"50\% of x\_1 \& \{y\}"),
        ("Δ vanilla same α", r"$\Delta$ vanilla same $\alpha$"),
        ("+4.00 ± 0.29", r"+4.00 $\pm$ 0.29"),
    ],
)
def test_text_cells_become_latex_commands(text, latex):
    assert latex_text(text) == latex


@pytest.mark.parametrize(
    ("formula", "latex"),
    [
        ("2m²hw/r + 98", "$2m^{2}hw/r + 98$"),
        ("2k²mw + 2k²mh", "$2k^{2}mw + 2k^{2}mh$"),
        ("c = max(1, ⌊m/r⌋)", r"$c = \max(1, \lfloor m/r\rfloor )$"),
        ("0", "$0$"),
    ],
)
def test_formulas_are_set_in_math_mode(formula, latex):
    assert latex_math(formula) == latex


@pytest.mark.parametrize("convention", ["paper", "exact"])
def test_the_table_of_all_eleven_modules_compiles(tmp_path, convention):
    table = overhead_table(modules=["all"], convention=convention)
    text = render_frame(table.to_frame(), "latex", table.notes)
    assert text.isascii() and "\\toprule" in text and "\\checkmark" in text
    assert "$2m^{2}hw$" in text or convention == "exact"
    path = tmp_path / f"overhead-{convention}.tex"
    path.write_text(text)
    compile_tables(tmp_path, [path])


def test_the_table_command_writes_a_file_that_compiles(tmp_path):
    out = tmp_path / "table.tex"
    assert main(["table", "--modules", "all", "--sort", "macs", "--format", "latex", "-o", str(out)]) == 0
    compile_tables(tmp_path, [out])
