"""Seed statistics: means with standard errors, paired comparisons and detectable differences.

Candidates trained with the same seed share initialization of shared layers, data split and
batch order (common random numbers), so two candidates are compared over their common seeds
with a paired t-test: the per-seed differences d_s = a_s − b_s, their mean d̄, the standard
error sd(d)/√n, and the 95% interval d̄ ± t(0.975, n−1)·SE.  Two candidates are *tied* when
that interval contains 0.  With fewer than two common seeds no tie can be judged (None).

The smallest difference a stage can detect is the normal-approximation one for a paired
two-sided test at level α and power π: (z(1−α/2) + z(π))·sd(d)/√n (2.80·sd(d)/√n at 5%/80%).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95
POWER = 0.8
TEST_NAME = "paired t-test over common seeds"


@dataclass(frozen=True)
class Summary:
    """Mean accuracy over seeds with its standard error (None with one seed)."""

    mean: float
    se: float | None
    sd: float | None
    n: int


def summarize(values: Sequence[float]) -> Summary:
    if not values:
        raise ValueError("no values to summarize")
    mean = statistics.fmean(values)
    if len(values) < 2:
        return Summary(mean, None, None, len(values))
    sd = statistics.stdev(values)
    return Summary(mean, sd / math.sqrt(len(values)), sd, len(values))


@dataclass(frozen=True)
class PairedComparison:
    """``a − b`` over the seeds both were trained with."""

    seeds: tuple[int, ...]
    difference: float  # mean of a_s − b_s
    se: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None

    @property
    def n(self) -> int:
        return len(self.seeds)

    @property
    def tied(self) -> bool | None:
        """Whether the interval contains 0; None when fewer than two common seeds."""
        if self.ci_low is None or self.ci_high is None:
            return None
        return self.ci_low <= 0.0 <= self.ci_high


def paired_comparison(
    a: Mapping[int, float], b: Mapping[int, float], level: float = LEVEL
) -> PairedComparison:
    """Compare two candidates' per-seed accuracies (``seed -> accuracy``) over their common seeds."""
    seeds = tuple(sorted(set(a) & set(b)))
    differences = [a[s] - b[s] for s in seeds]
    if not seeds:
        return PairedComparison(seeds, math.nan, None, None, None, None)
    mean = statistics.fmean(differences)
    if len(seeds) < 2:
        return PairedComparison(seeds, mean, None, None, None, None)
    sd = statistics.stdev(differences)
    se = sd / math.sqrt(len(seeds))
    if se == 0.0:  # identical differences on every seed: no spread to test against
        return PairedComparison(seeds, mean, 0.0, mean, mean, 1.0 if mean == 0.0 else 0.0)
    half = float(stats.t.ppf(0.5 + level / 2, len(seeds) - 1)) * se
    p_value = float(2 * stats.t.sf(abs(mean) / se, len(seeds) - 1))
    return PairedComparison(seeds, mean, se, mean - half, mean + half, p_value)


def detectable_difference(sd_difference: float, n: int, level: float = LEVEL, power: float = POWER) -> float:
    """The smallest true mean difference a paired test over ``n`` seeds detects with ``power``."""
    if n < 1:
        raise ValueError(f"n={n}: need at least one seed")
    z = stats.norm.ppf(0.5 + level / 2) + stats.norm.ppf(power)
    return float(z * sd_difference / math.sqrt(n))


def seeds_needed(sd_difference: float, difference: float, level: float = LEVEL, power: float = POWER) -> int:
    """Paired seeds needed to detect ``difference`` with ``power`` (normal approximation)."""
    if difference <= 0:
        raise ValueError(f"difference={difference}: must be positive")
    z = stats.norm.ppf(0.5 + level / 2) + stats.norm.ppf(power)
    return max(2, math.ceil((z * sd_difference / difference) ** 2))


def pooled_sd(groups: Sequence[Sequence[float]]) -> tuple[float | None, int]:
    """The pooled within-group standard deviation and its degrees of freedom."""
    squares, dof = 0.0, 0
    for values in groups:
        if len(values) >= 2:
            mean = statistics.fmean(values)
            squares += sum((v - mean) ** 2 for v in values)
            dof += len(values) - 1
    return (math.sqrt(squares / dof), dof) if dof else (None, 0)


def unpack_correct(packed: bytes, count: int) -> np.ndarray:
    """Which of ``count`` validation images a model got right, from its packed bits."""
    return np.unpackbits(np.frombuffer(packed, dtype=np.uint8), count=count).astype(bool)


def validation_sampling_sd(packed_a: bytes, packed_b: bytes, count: int) -> float:
    """The part of a model's accuracy sd that comes from validating on ``count`` images and not on
    the whole population, from two models of one architecture (their packed correctness bits):
    with q the share of images exactly one of them gets right, the difference of their
    accuracies has sampling variance about q/N, so each model's share is √(q / 2N)."""
    a, b = unpack_correct(packed_a, count), unpack_correct(packed_b, count)
    return math.sqrt(float(np.mean(a != b)) / (2 * count))
