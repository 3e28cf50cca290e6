"""``Analysis.breakdown``: the network's cost operation by operation, with a plan's modules."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ulsam_nas.analysis.backward import UNKNOWN
from ulsam_nas.analysis.graph import Item, Param, within
from ulsam_nas.analysis.plans import placement_text
from ulsam_nas.attention import attention_cost
from ulsam_nas.cost.compose import paper_of
from ulsam_nas.cost.cost import Cost
from ulsam_nas.networks.core import Row
from ulsam_nas.networks.plan import REMOVE, TAKE_OUT, Placement

if TYPE_CHECKING:
    from ulsam_nas.analysis.analysis import Analysis


def make_cost(values: Mapping[tuple[str, str], int], params_by: Mapping[str, int]) -> Cost:
    macs_by = {name: v for (kind, name), v in values.items() if kind == "macs" and v}
    ops = {name: v for (kind, name), v in values.items() if kind == "ops" and v}
    params = {name: v for name, v in params_by.items() if v}
    train: dict[str, int] | None = {name: v for (kind, name), v in values.items() if kind == "train" and v}
    if values.get(UNKNOWN):
        train = None
    return Cost(sum(params.values()), sum(macs_by.values()), params, macs_by, ops, "exact", train_by=train)


def _params_by_leaf(analysis: Analysis) -> tuple[dict[str, list[Param]], list[Param]]:
    """Each parameter on the row of the first call of the module that owns it; the rest (used
    by functional code, or by no call at all) on rows of their own."""
    called = {item.leaf for item in analysis.items if item.leaf is not None}
    by_leaf: dict[str, list[Param]] = defaultdict(list)
    others: list[Param] = []
    for p in analysis.params:
        if p.owner in called:
            by_leaf[p.owner].append(p)
        else:
            others.append(p)
    return by_leaf, others


def _convert(analysis: Analysis, exact: Cost, convention: str) -> Cost:

    return exact if convention == "exact" else paper_of(exact)


def _item_row(
    analysis: Analysis, item: Item, params: list[Param], replaced: list[str], convention: str
) -> Row:

    params_by: dict[str, int] = defaultdict(int)
    for p in params:
        params_by[p.kind] += p.numel
    index = next((q.index for q in analysis.positions if q.path == item.leaf), -1)
    return Row(
        item.path,
        index,
        item.what,
        item.in_shape or (),
        item.out_shape or (),
        _convert(analysis, make_cost(item.values, params_by), convention),
        any(path in item.scope for path in replaced),
    )


def _module_row(analysis: Analysis, p: Placement, convention: str) -> Row:

    position = analysis.positions[p.index]
    channels, height, width = position.out_shape
    cost = attention_cost(p.module, channels, height, width, convention, **p.config)
    name = position.path if p.action in TAKE_OUT else f"{position.path}.attention"
    shape = position.out_shape
    return Row(name, -1, placement_text(p, analysis.positions), shape, shape, cost, inserted=True)


def breakdown_rows(analysis: Analysis, placements: Sequence[Placement], convention: str) -> list[Row]:

    replaced = [analysis.positions[p.index].path for p in placements if p.action in TAKE_OUT]
    placed = [p for p in placements if p.module != REMOVE]  # a removed gate places no module
    pending = sorted(placed, key=lambda p: analysis.end_of(analysis.positions[p.index].path))
    by_leaf, others = _params_by_leaf(analysis)
    seen: set[str] = set()
    rows: list[Row] = []
    for item in analysis.items:
        while pending and analysis.end_of(analysis.positions[pending[0].index].path) <= item.node:
            rows.append(_module_row(analysis, pending.pop(0), convention))
        params = by_leaf.get(item.leaf, []) if item.leaf is not None and item.leaf not in seen else []
        if item.leaf is not None:
            seen.add(item.leaf)
        rows.append(_item_row(analysis, item, params, replaced, convention))
    rows += [_module_row(analysis, p, convention) for p in pending]
    for p in others:
        cost = _convert(analysis, make_cost({}, {p.kind: p.numel}), convention)
        gone = any(within(p.names, path) for path in replaced)
        rows.append(Row(p.owner, -1, f"parameter {p.names[0]}", (), (), cost, gone))
    return rows
