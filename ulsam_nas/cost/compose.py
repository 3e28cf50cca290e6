"""Composing costs, written once for every source of a network's cost (the built-in tables and a
traced model): a sum of many, the ULSAM paper's projection of an exact cost, and the check of a
convention's name."""

from __future__ import annotations

from ulsam_nas.cost.cost import CONVENTIONS, UNCOSTED, Cost
from ulsam_nas.errors import InvalidInput


def check_convention(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise InvalidInput(f"convention={convention!r} is unknown; allowed: {', '.join(CONVENTIONS)}")


def sum_costs(first: Cost, others: list[Cost]) -> Cost:
    """``first + others[0] + ...`` with one pass over the breakdowns (the search's hot path)."""
    if not others:
        return first
    params, macs = first.params, first.macs
    params_by, macs_by, ops = dict(first.params_by), dict(first.macs_by), dict(first.ops)
    train_by = None if first.train_by is None else dict(first.train_by)
    for cost in others:
        params += cost.params
        macs += cost.macs
        for target, source in ((params_by, cost.params_by), (macs_by, cost.macs_by), (ops, cost.ops)):
            for key, value in source.items():
                target[key] = target.get(key, 0) + value
        if train_by is not None and cost.train_by is not None:
            for key, value in cost.train_by.items():
                train_by[key] = train_by.get(key, 0) + value
        else:
            train_by = None
    return Cost(params, macs, params_by, macs_by, ops, first.convention, train_by=train_by)


def paper_of(exact: Cost) -> Cost:
    """The ULSAM paper's accounting of a network's own layers: conv/FC weights and biases, no
    BatchNorm, the MACs as they are; the count of operators without a closed form is kept (no
    convention may drop it silently)."""
    kept = {k: v for k, v in exact.params_by.items() if k in ("weight", "bias")}
    uncosted = exact.ops.get(UNCOSTED, 0)
    return Cost(
        sum(kept.values()), exact.macs, kept, exact.macs_by, {UNCOSTED: uncosted} if uncosted else {}, "paper"
    )
