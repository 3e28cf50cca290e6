"""What ``ulsam-nas cost --model MODULE:FACTORY`` prints: the user's network loaded from a
factory, its closed-form cost with a plan, its positions and a per-operation breakdown."""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Sequence
from typing import Any

import pandas as pd
from torch import nn

from ulsam_nas.analysis.analysis import Analysis
from ulsam_nas.analysis.graph import UNCOSTED, Uncosted, remainder_lines
from ulsam_nas.errors import InvalidInput


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def load_model(spec: str) -> nn.Module:
    """Import ``package.module:factory`` (the current directory first on the path, as
    ``python -m`` would have it) and call the factory with no arguments."""
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name.strip() or not attribute.strip():
        raise InvalidInput(
            f"--model {spec!r} is malformed; expected MODULE:FACTORY, e.g. examples.mynets:resnet_like"
        )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise InvalidInput(
            f"--model {spec!r}: cannot import {module_name!r} ({_first_line(error)}); allowed: a module "
            "importable from the current directory or the Python path"
        ) from None
    except Exception as error:  # the user's module failed while importing: say how, in one line
        raise InvalidInput(
            f"--model {spec!r}: importing {module_name!r} failed: {_first_line(error)}"
        ) from None
    factory: Any = module
    for part in attribute.split("."):
        if not hasattr(factory, part):
            raise InvalidInput(f"--model {spec!r}: module {module_name!r} has no attribute {attribute!r}")
        factory = getattr(factory, part)
    if not callable(factory):
        raise InvalidInput(f"--model {spec!r}: {attribute!r} is not callable; allowed: a function or class")
    try:
        model = factory()
    except Exception as error:
        raise InvalidInput(f"--model {spec!r}: {attribute}() failed: {_first_line(error)}") from None
    if not isinstance(model, nn.Module):
        raise InvalidInput(
            f"--model {spec!r}: {attribute}() returned {type(model).__name__}, not a torch.nn.Module"
        )
    return model


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
) -> dict[str, Any]:
    """Totals with ``plan`` applied; with ``breakdown`` one row per operation and placed module,
    with ``positions`` every position a plan can name."""
    cost = analysis.cost(plan, convention)
    replaced = [analysis.positions[p.index].path for p in analysis.resolve(plan) if p.action == "replace"]
    remainder = [
        u for u in analysis.remainder if not any(u.path == r or u.path.startswith(r + ".") for r in replaced)
    ]
    report: dict[str, Any] = {
        "model": model,
        "class": type(analysis.model).__name__,
        "input_size": list(analysis.input_size),
        "plan": analysis.plan_text(plan),
        **cost.to_dict(),
        "remainder": [{"op": u.op, "path": u.path, "out_shape": list(u.out_shape or ())} for u in remainder],
    }
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
    return report


def analysis_text(report: dict[str, Any]) -> str:
    head = (
        f"{report['model']} ({report['class']}), {_shape(report['input_size'])} input, plan: "
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
    if uncosted:
        remainder = [Uncosted(u["op"], u["path"], tuple(u["out_shape"]) or None) for u in report["remainder"]]
        lines.append(
            f"  REMAINDER: {report['ops'][UNCOSTED]} operator(s) without a closed form are NOT in "
            "these totals:"
        )
        lines += [f"    {line}" for line in remainder_lines(remainder)]
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
            "replace": "yes" if p["replace"] else f"no: {p['why_not_replace']}",
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
