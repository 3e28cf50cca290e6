"""What ``ulsam-nas cost --backbone`` prints: totals, breakdowns and optionally fvcore's trace."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ulsam_nas.backbones.breakdown import breakdown as table_breakdown
from ulsam_nas.backbones.network import BackboneShape
from ulsam_nas.cost.conventions import COUNTERS
from ulsam_nas.cost.training import training_lines, training_report
from ulsam_nas.networks.core import plan_cost
from ulsam_nas.networks.plan import PlanLike, plan_text


def network_report(
    backbone: str,
    *,
    plan: PlanLike = None,
    convention: str = "exact",
    breakdown: bool = False,
    trace: bool = False,
    train: bool = False,
    **network: Any,
) -> dict[str, Any]:
    """Params and MACs of a network from the closed form; with ``breakdown`` one row per layer
    and module, and with ``trace`` fvcore's traced count beside each row.  ``network``: the
    rest of its :class:`BackboneShape` (width_mult, resolution, num_classes, in_channels, stem),
    each at its default when not given; with ``train`` one training step's MACs too (in total
    and per row).  The plan is resolved once, here."""
    shape = BackboneShape(backbone, **network)
    table = shape.table()
    placements = table.resolve(plan)
    cost = plan_cost(table, placements, convention)
    report: dict[str, Any] = {**shape.arguments(), "plan": plan_text(placements), **cost.to_dict()}
    if train:
        report["training"] = training_report(cost)
    if breakdown:
        rows = table_breakdown(table, placements, convention)
        traced: dict[str, int] = {}
        if trace:
            from ulsam_nas.verify.cases import NetworkCase
            from ulsam_nas.verify.runner import run_isolated
            from ulsam_nas.verify.tracers import fvcore_by_module

            case = NetworkCase(plan=plan_text(placements), **shape.arguments())
            traced = run_isolated(fvcore_by_module, case)
            exact_rows = table_breakdown(table, placements, "exact")
        layers = []
        for i, row in enumerate(rows):
            entry: dict[str, Any] = {
                "name": row.name,
                "index": row.index,
                "what": row.what,
                "in_shape": list(row.in_shape),
                "out_shape": list(row.out_shape),
                "params": 0 if row.replaced else row.cost.params,
                "macs": 0 if row.replaced else row.cost.macs,
                "replaced": row.replaced,
            }
            if train:
                entry["train_macs"] = 0 if row.replaced else row.cost.train_macs
            if trace:
                path = "classifier" if row.name == "head" else f"features.{row.name}"
                value = traced.get(path, 0)
                if row.name == "head":  # the functional average pool is counted at the root
                    value = traced[""] - traced.get("features", 0)
                # A swapped-in module lives inside its block (layer4.block.se) and has its own row.
                value -= sum(
                    traced.get(f"features.{r.name}", 0) for r in rows if r.name.startswith(row.name + ".")
                )
                entry["fvcore_expected"] = (
                    0 if row.replaced else COUNTERS["fvcore"].project(exact_rows[i].cost)
                )
                entry["fvcore_traced"] = value
            layers.append(entry)
        report["layers"] = layers
        if trace:
            report["fvcore_expected"] = COUNTERS["fvcore"].project(plan_cost(table, placements))
            report["fvcore_traced"] = traced[""]
    return report


def network_text(report: dict[str, Any]) -> str:
    head = (
        f"{report['backbone']} α={report['width_mult']:g}, {report['in_channels']}×{report['resolution']}×"
        f"{report['resolution']} input, {report['num_classes']} classes, stem {report['stem']}, "
        f"plan: {report['plan'] or 'none (plain backbone)'}; {report['convention']} convention, unit MAC"
    )
    lines = [
        head,
        f"  params {report['params']:>15,}",
        f"  MACs   {report['macs']:>15,}",
        "  params by kind: " + _listing(report["params_by"]),
        "  MACs by op:     " + _listing(report["macs_by"]),
    ]
    if any(report["ops"].values()):
        lines.append("  other ops (elements): " + _listing(report["ops"]))
    if "training" in report:
        lines += training_lines(report["training"])
    if "layers" in report:
        frame = pd.DataFrame(
            [
                {
                    "layer": r["name"],
                    "what": r["what"] + (" (replaced)" if r["replaced"] else ""),
                    "in": "×".join(map(str, r["in_shape"])),
                    "out": "×".join(map(str, r["out_shape"])),
                    "params": f"{r['params']:,}",
                    "MACs": f"{r['macs']:,}",
                    **({"train MACs": f"{r['train_macs']:,}"} if "train_macs" in r else {}),
                    **(
                        {
                            "fvcore expected": f"{r['fvcore_expected']:,}",
                            "fvcore traced": f"{r['fvcore_traced']:,}",
                        }
                        if "fvcore_traced" in r
                        else {}
                    ),
                }
                for r in report["layers"]
            ]
        )
        lines += ["", frame.to_markdown(index=False, disable_numparse=True)]
        if "fvcore_traced" in report:
            same = report["fvcore_traced"] == report["fvcore_expected"]
            lines.append(
                f"\nfvcore total: expected {report['fvcore_expected']:,} (MACs + 2·BN + pool), traced "
                f"{report['fvcore_traced']:,}: {'equal' if same else 'DIFFERENT'}"
            )
    return "\n".join(lines) + "\n"


def _listing(counts: dict[str, int]) -> str:
    # A term a plan removed entirely (a swapped-out SE's hard sigmoid) sums to 0: not listed.
    return ", ".join(f"{k} {v:,}" for k, v in counts.items() if v)
