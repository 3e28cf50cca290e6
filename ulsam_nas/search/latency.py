"""A study's latency model: a latency table of every single placement its space offers at every
width (so that every configuration is predicted), measured once on the study's device when the
study is created, stored with the study (every worker and every later run predicts from the same
table, wherever it runs) and handed to the study's parameters."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ulsam_nas.errors import InvalidInput
from ulsam_nas.latency import QUICK, LatencyTable, TimingPlan, this_device

if TYPE_CHECKING:
    import optuna

    from ulsam_nas.search.parameters import ParameterSpace
    from ulsam_nas.search.problem import Problem

TABLE_ATTR = "latency_table"  # the study attribute holding its table (JSON)


def space_table(parameters: ParameterSpace, table: LatencyTable, timing: TimingPlan = QUICK) -> int:
    """Measure into ``table`` every entry the space's configurations need: each width's plain
    network and every valid option of every position alone.  Returns the entries measured."""
    costs = parameters.cost_table
    measured = 0
    for w, width in enumerate(parameters.space.width_mults):
        network = parameters.network.at(width)
        singles = [
            [network.resolve_placement(placement)]
            for s, slot in enumerate(costs.slots)
            for o, placement in enumerate(slot)
            if placement is not None and costs.option_valid[w, s, o]
        ]
        measured += table.measure(network, ["", *singles], timing)
    return measured


def latency_arrays(parameters: ParameterSpace, table: LatencyTable) -> tuple[np.ndarray, np.ndarray]:
    """The table's predictions as the cost table's arrays: the plain network per width, and each
    option's change per (width, slot, option)."""
    costs = parameters.cost_table
    base = np.zeros(costs.base_macs.shape)
    delta = np.zeros(costs.delta_macs.shape)
    for w, width in enumerate(parameters.space.width_mults):
        network = parameters.network.at(width)
        base[w] = table.predict(network, None)
        for s, slot in enumerate(costs.slots):
            for o, placement in enumerate(slot):
                if placement is not None and costs.option_valid[w, s, o]:
                    delta[w, s, o] = table.change(network, network.resolve_placement(placement))
    return base, delta


def attach_latency(problem: Problem, study: optuna.Study | None = None) -> None:
    """Give the problem's parameters the study's latency table: the one stored with ``study``,
    else the one measured for this problem already, else one measured now on this machine
    (refused when the latency budget is below every configuration).  Nothing for a study without
    a latency budget or objective."""
    config = problem.config
    if not config.needs_latency:
        return
    stored = study.user_attrs.get(TABLE_ATTR) if study is not None else None
    if stored is not None:
        table = LatencyTable.from_json(stored, f"study {config.name!r}'s latency table")
    elif problem.parameters.latency is not None:
        return
    else:
        device = config.latency
        table = LatencyTable(this_device(device.runtime, device.threads, device.batch))
        space_table(problem.parameters, table)
    problem.parameters.use_latency(table, *latency_arrays(problem.parameters, table))
    limit = config.budget.latency_ms
    if limit is not None:
        fastest = problem.parameters.fastest()
        assert fastest.latency_ms is not None
        if fastest.latency_ms > limit:
            network = problem.parameters.network
            raise InvalidInput(
                f"the latency budget ({limit:g} ms) is below the fastest configuration: "
                f"{fastest.latency_ms:.3f} ms predicted on {table.device.text()} "
                f"({network.width_label(fastest.width_mult)}, plan '{fastest.plan}')"
            )


def store_latency(problem: Problem, study: optuna.Study) -> None:
    """Store the problem's latency table with a new study (every later run predicts from it)."""
    if problem.parameters.latency is not None:
        study.set_user_attr(TABLE_ATTR, problem.parameters.latency.to_json())


def latency_here(
    study: optuna.Study,
    result: dict[str, Any],
    runtime: str,
    threads: int,
    batch: int,
    table_file: Path | None = None,
) -> dict[str, Any]:
    """What ``best`` lists, predicted under ``runtime`` on this machine (from its table, measuring
    what the table lacks) or from ``table_file`` (another device's table only predicts): each
    candidate's latency and, for the trade-off, the recommendation's against the reference's."""
    from ulsam_nas.latency import use_table
    from ulsam_nas.search.network import network_of_attrs
    from ulsam_nas.search.space import Candidate

    keys = [c["candidate"] for c in result["candidates"]]
    trade = result.get("trade_off")
    if trade:
        keys += [trade["recommended"], trade["reference"]]
    backbone = next((c["backbone"] for c in result["candidates"]), None)
    if backbone is None:
        return {}
    network = network_of_attrs(str(backbone), study.user_attrs.get("network", {}))
    configurations = {key: Candidate.split_key(key) for key in keys}

    def measure(table: LatencyTable) -> int:
        return sum(table.measure(network.at(w), ["", plan]) for w, plan in configurations.values())

    table, where = use_table(runtime, threads, batch, measure, table_file)
    found = {key: table.predict(network.at(w), plan) for key, (w, plan) in configurations.items()}
    latency: dict[str, Any] = {**where, "by_candidate": found}
    if trade:
        ours, theirs = found[trade["recommended"]], found[trade["reference"]]
        latency["trade_off"] = {"recommended_ms": ours, "reference_ms": theirs, "change": ours / theirs - 1}
    return latency


def latency_here_lines(latency: dict[str, Any]) -> list[str]:
    """``latency_here`` for people (the trade-off's latency; candidates show theirs in place)."""
    from ulsam_nas.latency import where_text

    if not latency:
        return []
    trade = latency.get("trade_off")
    if trade is None:
        return [f"Latency predicted {where_text(latency)}."]
    return [
        f"Latency: the recommendation {trade['recommended_ms']:.3f} ms against the reference's "
        f"{trade['reference_ms']:.3f} ms ({trade['change']:+.0%}), predicted {where_text(latency)}."
    ]
