"""What ``ulsam-nas cost MODULE`` prints: one module's params and MACs with their formulas and
the per-operation breakdown."""

from __future__ import annotations

from typing import Any

from ulsam_nas.attention._common import number_text
from ulsam_nas.attention.registry import attention_cost, attention_formula, get_attention
from ulsam_nas.cost.training import training_lines, training_report


def module_cost_report(
    module: str,
    channels: int,
    height: int,
    width: int,
    convention: str = "exact",
    train: bool = False,
    **config: Any,
) -> dict[str, Any]:
    """Params and MACs of one module with formulas and the per-operation breakdown; with
    ``train`` one training step's MACs and their formula too."""
    spec = get_attention(module)
    cost = attention_cost(module, channels, height, width, convention, **config)
    formula = attention_formula(module, channels, height, width, convention, **config)
    resolved = spec.make_config(channels, **config)
    training = {"training": training_report(cost), "train_formula": formula.train_text()} if train else {}
    return {
        "module": module,
        "title": spec.title,
        "citation": spec.citation,
        "shape": {"channels": channels, "height": height, "width": width},
        "config": {f: getattr(resolved, f) for f in spec.option_names()},
        **cost.to_dict(),
        "params_formula": formula.params_text(),
        "macs_formula": formula.macs_text(),
        "params_formula_paper_style": formula.params_text(ideal=True),
        "macs_formula_paper_style": formula.macs_text(ideal=True),
        "where": formula.where(),
        **training,
    }


def module_cost_text(report: dict[str, Any]) -> str:
    shape = report["shape"]
    config = ", ".join(f"{k}={number_text(v)}" for k, v in report["config"].items())
    lines = [
        f"{report['title']} on a {shape['channels']}×{shape['height']}×{shape['width']} map"
        + (f" ({config})" if config else "")
        + f", {report['convention']} convention, unit MAC",
        f"  params {report['params']:>15,}  = {report['params_formula']}",
        f"  MACs   {report['macs']:>15,}  = {report['macs_formula']}",
    ]
    if report["where"]:
        lines.append(f"  where {report['where']}")
    lines.append("  params by kind: " + _listing(report["params_by"]))
    lines.append("  MACs by op:     " + _listing(report["macs_by"]))
    if report["ops"]:
        lines.append("  other ops (elements): " + _listing(report["ops"]))
    if "training" in report:
        lines += training_lines(report["training"])
        if report["train_formula"]:
            lines.append(f"  training step MACs = {report['train_formula']}")
    return "\n".join(lines) + "\n"


def _listing(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counts.items()) or "none"
