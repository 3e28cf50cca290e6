"""Closed form against traced counts: ``verify`` (many cases) and ``explain`` (one module)."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ulsam_nas.cost.conventions import (
    COUNTERS,
    KNOWN_DIFFERENT,
    SUPPORTED,
    TERMS,
    difference,
    published_readings,
    term_value,
)
from ulsam_nas.cost.cost import Cost
from ulsam_nas.errors import InvalidInput
from ulsam_nas.verify.cases import AnyCase, Case
from ulsam_nas.verify.tracers import counter_absent, counter_version, trace_cases

Progress = Callable[[str], None]  # told one line as each counter starts and ends


def trace_in_subprocesses(
    counters: list[str], cases: Sequence[AnyCase], batch: int, progress: Progress | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Trace every case with each counter, one fresh process per counter (run side by side);
    ``progress`` hears a line when they start and as each counter finishes."""
    context = multiprocessing.get_context("spawn")
    results: dict[str, list[dict[str, Any]]] = {}
    executors = {
        c: concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) for c in counters
    }
    started = time.perf_counter()
    if progress:
        what = f"{len(cases)} case{'s' * (len(cases) != 1)} at batch {batch}"
        progress(f"tracing {what} with {', '.join(counters)}, each counter in its own process")
    try:
        futures = {ex.submit(trace_cases, c, cases, batch): c for c, ex in executors.items()}
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            counter = futures[future]
            results[counter] = future.result()
            if progress:
                elapsed = time.perf_counter() - started
                progress(f"  {counter} done ({done}/{len(counters)}, {elapsed:.0f} s)")
    finally:
        for executor in executors.values():
            executor.shutdown(cancel_futures=True)
    return {c: results[c] for c in counters}


def explain_residual(cost: Cost, residual: int) -> str:
    """Name every term that, times a small factor, equals a difference (several terms can have
    the same value, e.g. ULSAM's bias adds and BN elements)."""
    if residual == 0:
        return ""
    matches = [
        f"{factor} × {term} ({term_value(cost, term):,})"
        for term in TERMS
        for factor in (1, 2, 3, 4, -1, -2)
        if term_value(cost, term) and factor * term_value(cost, term) == residual
    ]
    if matches:
        return f"{residual:+,} = " + " or ".join(matches)
    return f"{residual:+,}, not a multiple of any single term"


@dataclass
class VerifyResult:
    rows: list[dict[str, Any]]
    params: list[dict[str, Any]]
    known_different: list[dict[str, Any]]
    versions: dict[str, Any]
    batch: int
    cases: int
    errors: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)  # one line per counter left out, and why

    @property
    def all_match(self) -> bool:
        return all(r["match"] for r in self.rows) and all(p["match"] for p in self.params)

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "all_match": self.all_match,
            "params": self.params,
            "known_different": self.known_different,
            "versions": self.versions,
            "batch": self.batch,
            "cases": self.cases,
            "absent": self.absent,
            "unit": "MAC (torch: FLOP = 2 × MAC)",
        }


def _versions(counters: list[str]) -> dict[str, Any]:
    versions: dict[str, Any] = {"python": platform.python_version()}
    for counter in counters:
        versions[counter] = counter_version(counter)
    return versions


def run_isolated(function: Any, *args: Any) -> Any:
    """``function(*args)`` in a fresh process (a counter's monkey-patches stay there)."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as executor:
        return executor.submit(function, *args).result()


def verify(
    cases: Sequence[AnyCase],
    batch: int = 1,
    known_different: bool = True,
    progress: Progress | None = None,
) -> VerifyResult:
    """Trace ``cases`` with the three supported counters (and the known-different ones at batch
    1) and compare each with the closed form projected onto that counter's convention."""
    if batch < 1:
        raise InvalidInput(f"batch={batch} is invalid; allowed: a positive integer")
    others = [c for c in KNOWN_DIFFERENT if counter_version(c)] if known_different else []
    absent = [counter_absent(c) for c in KNOWN_DIFFERENT if c not in others] if known_different else []
    if progress:
        for line in absent:
            progress(line)
    traced = trace_in_subprocesses(SUPPORTED, cases, batch, progress)
    if others:
        traced.update(trace_in_subprocesses(others, cases, 1, progress))
    rows: list[dict[str, Any]] = []
    params: list[dict[str, Any]] = []
    known: list[dict[str, Any]] = []
    for i, case in enumerate(cases):
        cost = case.cost()
        base = {"module": case.label, "shape": case.shape_dict(), "config": case.config}
        for counter in SUPPORTED:
            result = traced[counter][i]
            expected = COUNTERS[counter].project(cost)
            got = result.get("traced")
            row = {**base, "counter": counter, "expected": expected, "traced": got, "match": got == expected}
            if not row["match"]:
                row["difference"] = result.get("error") or explain_residual(cost, int(got or 0) - expected)
            rows.append(row)
            if counter == "fvcore" and "params" in result:
                params.append(
                    {
                        **base,
                        "expected": cost.params,
                        "traced": result["params"],
                        "match": result["params"] == cost.params,
                    }
                )
        for counter in others:
            result = traced[counter][i]
            convention = COUNTERS[counter]
            explained = convention.project(cost)
            got = result.get("traced")
            known.append(
                {
                    **base,
                    "counter": counter,
                    "closed_form_macs": cost.macs,
                    "traced": got,
                    "explained": explained,
                    "terms": [
                        {"term": t, "multiplier": k, "value": v} for t, k, v in convention.breakdown(cost)
                    ],
                    "residual": None if got is None else got - explained,
                    "error": result.get("error"),
                }
            )
    return VerifyResult(rows, params, known, _versions(SUPPORTED + others), batch, len(cases), absent=absent)


# -- explain ------------------------------------------------------------------------------------
@dataclass
class Explanation:
    case: Case
    cost: Cost
    paper: Cost
    counters: list[dict[str, Any]]
    differences: list[dict[str, Any]]
    paper_note: str
    readings: list[dict[str, Any]]
    absent: list[str] = field(default_factory=list)  # one line per counter left out, and why

    def to_json(self) -> dict[str, Any]:
        return {
            "module": self.case.module,
            "shape": self.case.shape_dict(),
            "config": self.case.config,
            "exact": self.cost.to_dict(),
            "paper": {"params": self.paper.params, "macs": self.paper.macs, "dropped": self.paper_note},
            "counters": self.counters,
            "differences": self.differences,
            "published_readings": self.readings,
            "absent": self.absent,
        }


def explain(case: Case, trace: bool = True, progress: Progress | None = None) -> Explanation:
    """Each counter's total for one module, the terms it includes and drops, and every pairwise
    difference between the counters term by term; with ``trace`` also the traced totals."""
    from ulsam_nas.attention import attention_cost, get_attention

    cost = case.cost()
    paper = attention_cost(case.module, case.channels, case.height, case.width, "paper", **case.config)
    available = [c for c in COUNTERS if counter_version(c)]
    absent = [counter_absent(c) for c in COUNTERS if c not in available]
    if progress:
        for line in absent:
            progress(line)
    traced = trace_in_subprocesses(available, [case], 1, progress) if trace else {}
    counters = []
    for key in available:
        convention = COUNTERS[key]
        entry: dict[str, Any] = {
            "counter": key,
            "title": convention.title,
            "unit": convention.unit,
            "supported": convention.supported,
            "expected": convention.project(cost),
            "includes": [{"term": t, "multiplier": k, "value": v} for t, k, v in convention.breakdown(cost)],
            "drops": [{"term": t, "value": v} for t, v in convention.dropped(cost)],
            "rule": convention.note,
        }
        if trace:
            result = traced[key][0]
            entry["traced"] = result.get("traced")
            entry["match"] = entry["traced"] == entry["expected"]
            if "error" in result:
                entry["error"] = result["error"]
        counters.append(entry)
    differences = []
    for i, a in enumerate(available):
        for b in available[i + 1 :]:
            terms = difference(cost, a, b)
            differences.append(
                {
                    "a": a,
                    "b": b,
                    "total": COUNTERS[a].project(cost) - COUNTERS[b].project(cost),
                    "terms": [{"term": t, "value": v} for t, v in terms],
                }
            )
    return Explanation(
        case,
        cost,
        paper,
        counters,
        differences,
        get_attention(case.module).paper_note,
        published_readings(cost),
        absent,
    )
