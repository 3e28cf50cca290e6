"""A built-in backbone's breakdown: one row per layer, per placed module and for the head, in
network order (the rows not replaced sum to the plan's cost)."""

from __future__ import annotations

from ulsam_nas.backbones.network import (
    REMOVE,
    BackboneShape,
    BackboneTable,
    LayerRecord,
    _head_text,
    _layer_name,
    _module_name,
    _placed_module_cost,
)
from ulsam_nas.cost.compose import check_convention
from ulsam_nas.networks.core import Row
from ulsam_nas.networks.plan import Placement, PlanLike


def network_breakdown(
    backbone: str,
    width_mult: float = 1.0,
    plan: PlanLike = None,
    resolution: int = 224,
    num_classes: int = 1000,
    in_channels: int = 3,
    stem: str = "imagenet",
    convention: str = "exact",
) -> list[Row]:
    """Per-layer closed forms in network order: backbone layers, modules, and the head."""
    table = BackboneShape(backbone, width_mult, resolution, num_classes, in_channels, stem).table()
    return breakdown(table, plan, convention)


def breakdown(table: BackboneTable, plan: PlanLike, convention: str) -> list[Row]:
    """``network_breakdown`` of a table (a plan resolved against it is not resolved again)."""
    check_convention(convention)
    by_index = {p.index: p for p in table.resolve(plan)}
    rows = []
    for record in table.layers:
        placement = by_index.get(record.spec.position)
        rows.append(_layer_row(table, record, placement, convention))
        if placement is not None and placement.module != REMOVE:
            shape = (record.spec.module_channels(placement.action), *record.out_hw)
            name = _module_name(placement)
            rows.append(
                Row(
                    name,
                    record.spec.position,
                    placement.text(),
                    shape,
                    shape,
                    _placed_module_cost(record, placement, convention),
                    inserted=True,
                )
            )
    last = table.layers[-1]
    rows.append(
        Row(
            "head",
            table.last_index + 1,
            _head_text(table.shape.backbone, table.shape.width_mult, table.shape.num_classes),
            (last.spec.out_channels, *last.out_hw),
            (table.shape.num_classes, 1, 1),
            table.head.cost(convention),
        )
    )
    return rows


def _layer_row(
    table: BackboneTable, record: LayerRecord, placement: Placement | None, convention: str
) -> Row:
    spec = record.spec
    cost, what = record.cost(convention), spec.describe()
    if placement is not None and placement.action == "swap":
        # The block without its SE; the module that takes the SE's place gets its own row.
        cost = cost - table.gate_cost(spec.position, convention)
        what += " (SE removed)" if placement.module == REMOVE else " (SE swapped out)"
    return Row(
        _layer_name(spec.position),
        spec.position,
        what,
        (spec.in_channels, *record.in_hw),
        (spec.out_channels, *record.out_hw),
        cost,
        placement is not None and placement.action == "replace",
    )
