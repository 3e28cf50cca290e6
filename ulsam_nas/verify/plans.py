"""Closed form against the counters: a plan's cost, projected onto each supported counter's
convention, and that counter's trace of the network the plan builds.

Each counter runs in a fresh process (``spawn``), so one counter's monkey-patches never reach
another's count; the network comes from ``factory``, a module-level callable the process can
import (a function or a class), called with no arguments.  The tracing is ``verify``'s own
(``runner.trace_in_subprocesses`` over :class:`~ulsam_nas.verify.cases.PlanCase`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from ulsam_nas.analysis.analysis import Analysis, analyze
from ulsam_nas.cost.conventions import COUNTERS, SUPPORTED
from ulsam_nas.verify.cases import PlanCase
from ulsam_nas.verify.runner import trace_in_subprocesses


def verify_plans(
    factory: Callable[[], nn.Module],
    input_size: tuple[int, int, int],
    plans: Sequence[str],
    counters: Sequence[str] = tuple(SUPPORTED),
    analysis: Analysis | None = None,
) -> list[dict[str, Any]]:
    """One row per (plan, counter): expected (the projected closed form), traced, match; and
    one ``params`` row per plan where the counter reports parameters.  ``analysis``: the
    factory's network already analyzed at ``input_size`` (else it is traced here)."""
    if analysis is None:
        analysis = analyze(factory(), input_size)
    cases = [PlanCase(factory, input_size, plan) for plan in plans]
    traced = trace_in_subprocesses(list(counters), cases, 1)
    rows: list[dict[str, Any]] = []
    for i, plan in enumerate(plans):
        cost = analysis.cost(plan)
        for counter in counters:
            result = traced[counter][i]
            expected = COUNTERS[counter].project(cost)
            got = result.get("traced")
            rows.append(
                {
                    "plan": plan,
                    "counter": counter,
                    "expected": expected,
                    "traced": got,
                    "match": got == expected,
                }
                | ({"error": result["error"]} if "error" in result else {})
            )
            if result.get("params") is not None:
                rows.append(
                    {
                        "plan": plan,
                        "counter": f"{counter} params",
                        "expected": cost.params,
                        "traced": result["params"],
                        "match": result["params"] == cost.params,
                    }
                )
    return rows
