"""What ``ulsam-nas cost --backbone`` prints: totals, breakdowns and optionally fvcore's trace."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ulsam_nas.backbones.network import backbone_table, network_breakdown, network_cost, resolve_plan
from ulsam_nas.cost.conventions import COUNTERS
from ulsam_nas.networks.plan import PlanLike, plan_text


def network_report(
    backbone: str,
    *,
    plan: PlanLike = None,
    convention: str = "exact",
    breakdown: bool = False,
    trace: bool = False,
    **network: Any,
) -> dict[str, Any]:
    """Params and MACs of a network from the closed form; with ``breakdown`` one row per layer
    and module, and with ``trace`` fvcore's traced count beside each row.  ``network``: the
    other arguments of ``create_network`` (width_mult, resolution, num_classes, in_channels,
    stem), each at create_network's default when not given."""
    args: dict[str, Any] = {"backbone": backbone, **network_defaults(), **network}
    table = backbone_table(**args)
    placements = resolve_plan(table, plan)
    cost = network_cost(plan=placements, convention=convention, **args)
    report: dict[str, Any] = {**args, "plan": plan_text(placements), **cost.to_dict()}
    if breakdown:
        rows = network_breakdown(plan=placements, convention=convention, **args)
        traced: dict[str, int] = {}
        if trace:
            from ulsam_nas.verify.cases import NetworkCase
            from ulsam_nas.verify.runner import run_isolated
            from ulsam_nas.verify.tracers import fvcore_by_module

            case = NetworkCase(plan=plan_text(placements), **args)
            traced = run_isolated(fvcore_by_module, case)
            exact_rows = network_breakdown(plan=placements, convention="exact", **args)
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
            report["fvcore_expected"] = COUNTERS["fvcore"].project(network_cost(plan=placements, **args))
            report["fvcore_traced"] = traced[""]
    return report


def network_defaults() -> dict[str, Any]:
    """create_network's defaults for everything but backbone and plan (one source of truth)."""
    import inspect

    parameters = inspect.signature(backbone_table).parameters
    return {name: p.default for name, p in parameters.items() if name != "backbone"}


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
