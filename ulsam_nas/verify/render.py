"""Text, Markdown and CSV views of verify and explain results."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pandas as pd

from ulsam_nas.cost.conventions import COUNTERS
from ulsam_nas.verify.runner import Explanation, VerifyResult


def _shape(shape: dict[str, int]) -> str:
    return f"{shape['channels']}×{shape['height']}×{shape['width']}"


def _config(config: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in config.items()) or "defaults"


def _num(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def summary_frame(result: VerifyResult) -> pd.DataFrame:
    """Module × counter: cases traced, cases equal, and the paper-shape numbers."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in result.rows:
        groups[(row["module"], row["counter"])].append(row)
    records = []
    for (module, counter), rows in groups.items():
        first = rows[0]
        records.append(
            {
                "module": module,
                "counter": counter,
                "cases": len(rows),
                "equal": sum(r["match"] for r in rows),
                "first case": _shape(first["shape"]),
                "expected": _num(first["expected"]),
                "traced": _num(first["traced"]),
            }
        )
    return pd.DataFrame(records)


def known_frame(result: VerifyResult) -> pd.DataFrame:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in result.known_different:
        groups[(row["module"], row["counter"])].append(row)
    records = []
    for (module, counter), rows in groups.items():
        first = rows[0]
        terms = " + ".join(
            f"{t['multiplier']}×{t['term']}" if t["multiplier"] != 1 else t["term"] for t in first["terms"]
        )
        records.append(
            {
                "module": module,
                "counter": counter,
                "cases": len(rows),
                "explained exactly": sum(r["residual"] == 0 for r in rows),
                "first case": _shape(first["shape"]),
                "closed-form MACs": _num(first["closed_form_macs"]),
                "traced": _num(first["traced"]),
                "= terms": terms,
            }
        )
    return pd.DataFrame(records)


def mismatch_lines(result: VerifyResult) -> list[str]:
    lines = []
    for row in result.rows:
        if not row["match"]:
            lines.append(
                f"{row['module']} {_shape(row['shape'])} ({_config(row['config'])}) {row['counter']}: "
                f"expected {_num(row['expected'])}, traced {_num(row['traced'])}: {row['difference']}"
            )
    for row in result.params:
        if not row["match"]:
            lines.append(
                f"{row['module']} {_shape(row['shape'])} params: expected {row['expected']:,}, "
                f"fvcore parameter_count {row['traced']}"
            )
    return lines


def verify_markdown(result: VerifyResult, command: str) -> str:
    params_ok = sum(p["match"] for p in result.params)
    parts = [
        "# Closed form vs traced counts",
        "",
        f"`{command}`: {result.cases} cases, batch {result.batch}, per-sample totals; each counter's "
        "expected value is the exact closed form projected onto that counter's convention "
        "(`ulsam_nas/cost/conventions.py`). Units: MAC, except torch (FLOP = 2 × MAC). Shapes are "
        "channels×height×width (for networks: input channels×resolution×resolution); *first case* "
        "is the one whose numbers are shown (the paper's shape for modules).",
        "",
        f"**All supported counters equal: {'yes' if result.all_match else 'NO'}.** "
        f"Parameter counts (fvcore `parameter_count`) equal in {params_ok}/{len(result.params)} cases.",
        "",
        summary_frame(result).to_markdown(index=False, disable_numparse=True),
        "",
    ]
    mismatches = mismatch_lines(result)
    if mismatches:
        parts += ["## Differences", "", *[f"- {m}" for m in mismatches], ""]
    if result.known_different:
        parts += [
            "## Known-different counters (not held to equality)",
            "",
            "Their totals follow from the same closed form under the rules below; *explained exactly* "
            "counts the cases whose traced total equals that sum of terms.",
            "",
            *[
                f"- `{k}` ({COUNTERS[k].title}): {COUNTERS[k].note}."
                for k in dict.fromkeys(r["counter"] for r in result.known_different)
            ],
            "",
            known_frame(result).to_markdown(index=False, disable_numparse=True),
            "",
        ]
    parts += ["## Versions", "", *[f"- {k}: {v}" for k, v in result.versions.items()], ""]
    if result.absent:
        parts += ["Not run:", "", *[f"- {line}" for line in result.absent], ""]
    return "\n".join(parts)


def verify_csv(result: VerifyResult) -> str:
    frame = pd.DataFrame(
        [
            {
                "module": r["module"],
                "channels": r["shape"]["channels"],
                "height": r["shape"]["height"],
                "width": r["shape"]["width"],
                "config": _config(r["config"]),
                "counter": r["counter"],
                "expected": r["expected"],
                "traced": r["traced"],
                "match": r["match"],
            }
            for r in result.rows
        ]
    )
    return str(frame.to_csv(index=False))


def explain_text(ex: Explanation) -> str:
    cost = ex.cost
    lines = [
        f"{ex.case.module} on a {ex.case.shape_text()} map ({ex.case.config_text()})",
        f"Closed form (exact): params {cost.params:,}; MACs {cost.macs:,} = "
        + " + ".join(f"{k} {v:,}" for k, v in cost.macs_by.items()),
        "  other operations (elements): " + ", ".join(f"{k} {v:,}" for k, v in cost.ops.items()),
        f"ULSAM paper's convention: params {ex.paper.params:,}, FLOPs {ex.paper.macs:,} (MACs); "
        f"it {ex.paper_note}.",
        "",
        "Each counter's total = the terms it counts (× its multiplier); what it leaves out:",
    ]
    for entry in ex.counters:
        label = entry["counter"] + ("" if entry["supported"] else " (known-different)")
        terms = " + ".join(
            f"{t['multiplier']}×{t['term']} {t['value']:,}"
            if t["multiplier"] != 1
            else f"{t['term']} {t['value']:,}"
            for t in entry["includes"]
        )
        traced = ""
        if "traced" in entry:
            status = "equal" if entry["match"] else f"differs by {_residual(entry)}"
            traced = f"; traced {_num(entry['traced'])} ({status})"
        lines.append(f"  {label:<34} {entry['expected']:>15,} {entry['unit']}{traced}")
        lines.append(f"      = {terms}")
        if entry["drops"]:
            lines.append("      drops " + ", ".join(f"{d['term']} {d['value']:,}" for d in entry["drops"]))
    lines += [f"  not run: {line}" for line in ex.absent]
    lines += [
        "",
        "Differences between counters, term by term (multiplier in A minus in B, × the term):",
    ]
    for diff in ex.differences:
        lines.append(f"  {diff['a']} - {diff['b']} = {diff['total']:+,}" + _signed_terms(diff["terms"]))
    lines += [
        "",
        "As published figures print them: M = ÷ 10^6; binary M = ÷ 2^20 (ECA-Net's README prints",
        "ResNet-50's 25,557,032 params as 24.37M); a counter run on a model in train mode:",
    ]
    for reading in ex.readings:
        lines.append(
            f"  {reading['what']:<40} {reading['count']:>15,} = {reading['decimal_mega']:.4g} M"
            f" = {reading['binary_mega']:.4g} binary M"
        )
    return "\n".join(lines) + "\n"


def _residual(entry: dict[str, Any]) -> str:
    if entry.get("error"):
        return str(entry["error"])
    return f"{entry['traced'] - entry['expected']:+,}" if isinstance(entry["traced"], int) else "?"


def _signed_terms(terms: list[dict[str, Any]]) -> str:
    """' = conv 8,064 - batch_norm 9,072' (empty when the counters agree term by term)."""
    text = ""
    for i, t in enumerate(terms):
        sign = ("-" if t["value"] < 0 else "") if i == 0 else (" - " if t["value"] < 0 else " + ")
        text += f"{sign}{t['term']} {abs(t['value']):,}"
    return f" = {text}" if text else ""
