"""What ``ulsam-nas cost --model MODULE:FACTORY`` prints: the user's network loaded from a
factory, its closed-form cost with a plan, its positions and a per-operation breakdown."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ulsam_nas.analysis.analysis import Analysis
from ulsam_nas.analysis.graph import UNCOSTED, Uncosted, remainder_lines
from ulsam_nas.analysis.source import ModelSource
from ulsam_nas.cost.training import training_lines, training_report
from ulsam_nas.errors import InvalidInput
from ulsam_nas.networks.plan import TAKE_OUT


def parse_model_args(text: str | None) -> dict[str, Any]:
    """``--model-args``: a JSON object (``{"num_classes": 10, "widths": [16, 32]}``) or
    ``key=value`` pairs separated by commas (``num_classes=10,pretrained=false``), each value
    read as JSON where it is one (numbers, true/false, null) and as a string otherwise."""
    if text is None or not text.strip():
        return {}
    if text.lstrip().startswith("{"):
        try:
            found = json.loads(text)
        except json.JSONDecodeError as error:
            raise InvalidInput(
                f"--model-args {text!r} is not valid JSON: {error.msg} (column {error.colno})"
            ) from None
        if not isinstance(found, dict):
            raise InvalidInput(f"--model-args {text!r} is not a JSON object")
        return found
    arguments: dict[str, Any] = {}
    for pair in (p.strip() for p in text.split(",") if p.strip()):
        key, equals, value = pair.partition("=")
        if not equals or not key.strip().isidentifier():
            raise InvalidInput(
                f"--model-args: {pair!r} is not KEY=VALUE; allowed: k=v,k2=v2 or a JSON object "
                "(use JSON for lists and strings with commas)"
            )
        try:
            arguments[key.strip()] = json.loads(value.strip())
        except json.JSONDecodeError:
            arguments[key.strip()] = value.strip()
    return arguments


def parse_input_size(values: Sequence[str]) -> tuple[int, int, int]:
    """``3,224,224`` or ``3 224 224`` (one argument or three)."""
    parts = [p for v in values for p in re.split(r"[,\s]+", v.strip()) if p]
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise InvalidInput(
            f"--input-size {' '.join(values)!r} is invalid; allowed: C,H,W or C H W, three positive "
            "integers (e.g. 3,224,224)"
        )
    return (int(parts[0]), int(parts[1]), int(parts[2]))


def _shape(shape: Sequence[int] | None) -> str:
    return "×".join(map(str, shape)) if shape else "-"


def analysis_report(
    analysis: Analysis,
    *,
    model: str,
    plan: str = "",
    convention: str = "exact",
    breakdown: bool = False,
    positions: bool = False,
    counters: ModelSource | None = None,
    model_args: Mapping[str, Any] | None = None,
    train: bool = False,
) -> dict[str, Any]:
    """Totals with ``plan`` applied; with ``breakdown`` one row per operation and placed module,
    with ``positions`` every position a plan can name; with ``counters`` (the model's source,
    which each counter's process builds again) the totals checked against every supported
    counter; with ``train`` one training step's MACs (None where its backward has no closed
    form: an uncosted operator, a module trained where no gradient flows before it)."""
    cost = analysis.cost(plan, convention)
    replaced = [analysis.positions[p.index].path for p in analysis.resolve(plan) if p.action in TAKE_OUT]
    remainder = [
        u for u in analysis.remainder if not any(u.path == r or u.path.startswith(r + ".") for r in replaced)
    ]
    report: dict[str, Any] = {
        "model": model,
        "model_args": dict(counters.kwargs) if counters is not None else dict(model_args or {}),
        "class": type(analysis.model).__name__,
        "input_size": list(analysis.input_size),
        "plan": analysis.plan_text(plan),
        **cost.to_dict(),
        "remainder": [{"op": u.op, "path": u.path, "out_shape": list(u.out_shape or ())} for u in remainder],
    }
    if train:
        report["training"] = training_report(cost)
    if positions:
        report["positions"] = [
            {
                "index": p.index,
                "path": p.path,
                "what": p.what,
                "in_shape": list(p.in_shape or ()),
                "out_shape": list(p.out_shape),
                "replace": p.replace,
                "why_not_replace": p.why_not_replace,
                "gate": p.gate,
                "needs_grad": p.grad_out,
            }
            for p in analysis.positions
        ]
    if breakdown:
        report["layers"] = [
            {
                "name": r.name,
                "what": r.what,
                "in_shape": list(r.in_shape),
                "out_shape": list(r.out_shape),
                "params": 0 if r.replaced else r.cost.params,
                # an operation without a closed form has no MAC figure, never a zero
                "macs": 0 if r.replaced else (r.cost.macs if r.cost.complete else None),
                "complete": r.cost.complete,
                "replaced": r.replaced,
                "inserted": r.inserted,
            }
            for r in analysis.breakdown(plan, convention)
        ]
    if counters is not None:
        from ulsam_nas.verify.plans import verify_plans

        report["counters"] = verify_plans(counters, analysis.input_size, [report["plan"]], analysis=analysis)
    return report


def analysis_text(report: dict[str, Any]) -> str:
    called = ", ".join(f"{k}={v!r}" for k, v in report.get("model_args", {}).items())
    model = f"{report['model']}({called})" if called else report["model"]
    head = (
        f"{model} ({report['class']}), {_shape(report['input_size'])} input, plan: "
        f"{report['plan'] or 'none (the network as given)'}; {report['convention']} convention, unit MAC"
    )
    uncosted = report["ops"].get(UNCOSTED, 0)
    incomplete = (
        f"  INCOMPLETE: {uncosted} operator(s) without a closed form are not in it" if uncosted else ""
    )
    ops = {k: v for k, v in report["ops"].items() if k != UNCOSTED}
    lines = [
        head,
        f"  params {report['params']:>15,}",
        f"  MACs   {report['macs']:>15,}{incomplete}",
        "  params by kind: " + ", ".join(f"{k} {v:,}" for k, v in report["params_by"].items()),
        "  MACs by op:     " + ", ".join(f"{k} {v:,}" for k, v in report["macs_by"].items()),
    ]
    if ops:
        lines.append("  other ops (elements): " + ", ".join(f"{k} {v:,}" for k, v in ops.items()))
    if "training" in report:
        lines += training_lines(report["training"])
    if uncosted:
        remainder = [Uncosted(u["op"], u["path"], tuple(u["out_shape"]) or None) for u in report["remainder"]]
        lines.append(
            f"  REMAINDER: {report['ops'][UNCOSTED]} operator(s) without a closed form are NOT in "
            "these totals:"
        )
        lines += [f"    {line}" for line in remainder_lines(remainder)]
    if "counters" in report:
        lines += ["", "Checked against the counters (each traced in its own process, eval mode, batch 1):"]
        for row in report["counters"]:
            status = "equal" if row["match"] else f"DIFFERENT ({row.get('error', 'see the figures')})"
            traced = "-" if row["traced"] is None else f"{row['traced']:,}"
            lines.append(
                f"  {row['counter']:<22} expected {row['expected']:>15,}  traced {traced:>15}  {status}"
            )
    if "positions" in report:
        lines += ["", _table(_position_rows(report["positions"]))]
    if "layers" in report:
        lines += ["", _table(_layer_rows(report["layers"]))]
    return "\n".join(lines) + "\n"


def _position_rows(positions: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [
        {
            "#": str(p["index"]),
            "path": p["path"],
            "module": p["what"],
            "in": _shape(p["in_shape"]),
            "out": _shape(p["out_shape"]),
            "replace": ("yes" if p["replace"] else f"no: {p['why_not_replace']}")
            + ("; an attention gate: swap allowed" if p.get("gate") else ""),
        }
        for p in positions
    ]


def _layer_rows(layers: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [
        {
            "layer": r["name"] or "(model)",
            "what": r["what"] + (" (replaced)" if r["replaced"] else ""),
            "in": _shape(r["in_shape"]),
            "out": _shape(r["out_shape"]),
            "params": f"{r['params']:,}",
            "MACs": "not costed" if r["macs"] is None else f"{r['macs']:,}",
        }
        for r in layers
    ]


def _table(rows: list[dict[str, str]]) -> str:
    return str(pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True)) if rows else "(none)"
