"""Closed form against the counters: a plan's cost, projected onto each supported counter's
convention, and that counter's trace of the network the plan builds.

Each counter runs in a fresh process (``spawn``), so one counter's monkey-patches never reach
another's count; the network comes from ``factory``, a module-level callable the process can
import (a function or a class), called with no arguments.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import io
import logging
import multiprocessing
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ulsam_nas.analysis.analysis import Analysis, analyze
from ulsam_nas.cost.conventions import COUNTERS, SUPPORTED


def trace_plans(
    counter: str, factory: Callable[[], nn.Module], input_size: tuple[int, int, int], plans: Sequence[str]
) -> list[dict[str, Any]]:
    """The counter's total and parameter count (where it reports one) of each plan's network,
    traced in eval mode under ``no_grad`` on a batch-1 input.  Runs in the counter's process."""
    from ulsam_nas.verify.tracers import TRACERS

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    logging.disable(logging.CRITICAL)
    analysis = analyze(factory(), input_size)
    x = torch.randn(1, *input_size, generator=torch.Generator().manual_seed(0))
    results: list[dict[str, Any]] = []
    for plan in plans:
        model = analysis.build(plan).eval()
        try:
            with (
                torch.no_grad(),
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
            ):
                total, params = TRACERS[counter](model, x)
        except Exception as error:  # a counter's crash is a result to report
            results.append({"error": f"{type(error).__name__}: {error}".splitlines()[0]})
            continue
        results.append({"traced": round(total) if total == round(total) else total, "params": params})
    return results


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
    context = multiprocessing.get_context("spawn")
    executors = {
        c: concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) for c in counters
    }
    try:
        futures = {
            c: ex.submit(trace_plans, c, factory, input_size, list(plans)) for c, ex in executors.items()
        }
        traced = {c: future.result() for c, future in futures.items()}
    finally:
        for executor in executors.values():
            executor.shutdown(cancel_futures=True)
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
