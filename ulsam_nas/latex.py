"""Tables as LaTeX that compiles with pdflatex: a booktabs ``tabular``, ASCII only.

Every Unicode character the tool's tables use is written as a LaTeX command: ✓ as
``\\checkmark`` (package amssymb), ✗ as ``--``, superscripts as ``$^{2}$``, Greek letters, ×, ·,
±, ≤ and the floor brackets in math mode.  Formula columns (a header containing "formula") are
set in math mode whole: ``2m²hw/r`` becomes ``$2m^{2}hw/r$``.  The notes follow as ``%``
comments.  Required packages: booktabs and amssymb (both in Debian's texlive-latex-base and
texlive-latex-recommended).
"""

from __future__ import annotations

import re
import unicodedata

import pandas as pd

PACKAGES = ("booktabs", "amssymb")

_SUPERSCRIPTS = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+", strict=True))
_SUBSCRIPTS = dict(zip("₀₁₂₃₄₅₆₇₈₉", "0123456789", strict=True))

# Characters that are math symbols: written bare in math mode, inside $…$ in text.
_MATH = {
    "×": r"\times",
    "·": r"\cdot",
    "±": r"\pm",
    "−": "-",
    "≤": r"\leq",
    "≥": r"\geq",
    "≠": r"\neq",
    "≈": r"\approx",
    "→": r"\to",
    "∞": r"\infty",
    "⌊": r"\lfloor",
    "⌋": r"\rfloor",
    "⌈": r"\lceil",
    "⌉": r"\rceil",
    "√": r"\surd",
    "α": r"\alpha",
    "β": r"\beta",
    "γ": r"\gamma",
    "δ": r"\delta",
    "Δ": r"\Delta",
    "ε": r"\varepsilon",
    "θ": r"\theta",
    "λ": r"\lambda",
    "μ": r"\mu",
    "ρ": r"\rho",
    "σ": r"\sigma",
    "τ": r"\tau",
    "φ": r"\phi",
    "ψ": r"\psi",
    "ω": r"\omega",
}
# Characters with a text-mode command.
_TEXT = {
    "✓": r"\checkmark{}",
    "✗": "--",
    "–": "--",
    "—": "---",
    "…": r"\ldots{}",
    "“": "``",
    "”": "''",
    "‘": "`",
    "’": "'",
    "\u00a0": "~",
    "\u2009": r"\,",
    "\u202f": r"\,",
}
_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def _fallback(char: str) -> str:
    """An unmapped character: its ASCII base letter (é → e) where it has one, else '?'."""
    ascii_part = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
    return ascii_part or "?"


def _script_run(text: str, i: int) -> tuple[str, int] | None:
    """A run of superscript (or subscript) characters starting at ``text[i]`` as ``^{…}`` (or
    ``_{…}``) and the index after it; None when ``text[i]`` is neither."""
    for table, mark in ((_SUPERSCRIPTS, "^"), (_SUBSCRIPTS, "_")):
        if text[i] in table:
            end = i
            while end < len(text) and text[end] in table:
                end += 1
            return f"{mark}{{{''.join(table[c] for c in text[i:end])}}}", end
    return None


def _translate(text: str, math: bool) -> str:
    """``text`` as ASCII LaTeX: in text mode (``math=False``) specials escaped and math symbols
    wrapped in ``$…$``; in math mode written bare."""
    out: list[str] = []
    i = 0
    while i < len(text):
        script = _script_run(text, i)
        if script is not None:
            out.append(script[0] if math else f"${script[0]}$")
            i = script[1]
            continue
        char = text[i]
        if char in _MATH:
            out.append(_MATH[char] + " " if math else f"${_MATH[char]}$")
        elif math and char in "_{}":
            out.append("\\" + char)
        elif char in _SPECIALS:
            out.append(_SPECIALS[char])
        elif not math and char in _TEXT:
            out.append(_TEXT[char])
        else:
            out.append(char if char.isascii() else _fallback(char))
        i += 1
    return "".join(out)


def latex_text(text: str) -> str:
    """``text`` for a LaTeX text-mode cell: specials escaped, Unicode as commands, ASCII only."""
    return _translate(text, math=False)


def latex_math(text: str) -> str:
    """A formula such as ``2m²hw/r + 98`` in math mode: ``$2m^{2}hw/r + 98$``."""
    formula = re.sub(r"\bmax\b", r"\\max", _translate(text, math=True)).strip()
    return f"${formula}$" if formula else ""


def _is_number(text: str) -> bool:
    return bool(re.fullmatch(r"[-+−]?[\d,]*\.?\d+(e[-+]?\d+)?%?", text.strip()))


def latex_table(frame: pd.DataFrame, notes: list[str] | None = None) -> str:
    """``frame`` as a booktabs tabular (numbers right-aligned), then the notes as comments."""
    columns = [str(c) for c in frame.columns]
    cells = [[("" if pd.isna(v) else str(v)) for v in row] for row in frame.itertuples(index=False)]
    formula = [("formula" in c.lower()) for c in columns]
    numeric = [
        all(_is_number(row[j]) for row in cells if row[j]) and any(row[j] for row in cells)
        for j in range(len(columns))
    ]
    spec = "".join("r" if n else "l" for n in numeric)
    lines = [
        "% Requires " + ", ".join(f"\\usepackage{{{name}}}" for name in PACKAGES) + ".",
        f"\\begin{{tabular}}{{{spec}}}",
        "\\toprule",
        " & ".join(latex_text(c) for c in columns) + r" \\",
        "\\midrule",
    ]
    for row in cells:
        rendered = [latex_math(v) if formula[j] else latex_text(v) for j, v in enumerate(row)]
        lines.append(" & ".join(rendered) + r" \\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    lines += [f"% {i}. {latex_text(note)}" for i, note in enumerate(notes or [], 1)]
    return "\n".join(lines) + "\n"
