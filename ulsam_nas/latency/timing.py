"""Wall time of calls, robust to what else the machine runs: every call warmed up, then timed in
interleaved rounds (each round times every call in turn, for at least ``round_seconds``), and
reported as the median over rounds of each round's median.  A disturbance lasting a moment
spoils one round of a few calls, not one call's every timing."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class TimingPlan:
    """How long to time: rounds, the least time per call and round, the least calls per round,
    and the warm-up (which also lets a runtime settle its caches and thread pool)."""

    rounds: int = 5
    round_seconds: float = 0.02
    min_calls: int = 3
    warm_seconds: float = 0.05
    warm_calls: int = 3


QUICK = TimingPlan()
CAREFUL = TimingPlan(rounds=9, round_seconds=0.05, min_calls=5, warm_seconds=0.2, warm_calls=5)


def _batch_median(call: Callable[[], object], seconds: float, calls: int) -> float:
    times: list[float] = []
    spent = 0.0
    while len(times) < calls or spent < seconds:
        start = time.perf_counter()
        call()
        took = time.perf_counter() - start
        times.append(took)
        spent += took
    return statistics.median(times)


def time_calls(calls: Mapping[K, Callable[[], object]], plan: TimingPlan = QUICK) -> dict[K, float]:
    """Each call's wall time in milliseconds (the median over interleaved rounds of per-round
    medians)."""
    for call in calls.values():
        _batch_median(call, plan.warm_seconds, plan.warm_calls)
    rounds: dict[K, list[float]] = {key: [] for key in calls}
    for _ in range(plan.rounds):
        for key, call in calls.items():
            rounds[key].append(_batch_median(call, plan.round_seconds, plan.min_calls))
    return {key: statistics.median(found) * 1e3 for key, found in rounds.items()}
