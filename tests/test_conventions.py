"""Projections of the exact cost onto each counter's convention (no tracing: fast)."""

from __future__ import annotations

import pytest

import ulsam_nas
from ulsam_nas.cost.conventions import COUNTERS, KNOWN_DIFFERENT, SUPPORTED, difference

# Totals measured with each counter on the official-structure modules at m=512, 14×14, r=16,
# t=64, g=4 (shared/design/counters.md §2; torch = FLOPs, the rest MACs).
MEASURED = {
    "ulsam": {"torch": 401_408, "fvcore": 402_976, "ptflops_aten": 301_840},
    "non_local": {"torch": 244_858_880, "fvcore": 122_630_144, "ptflops_aten": 122_680_320},
    "a2": {"torch": 54_591_488, "fvcore": 27_295_744, "ptflops_aten": 27_433_728},
    "se": {"torch": 65_536, "fvcore": 133_120, "ptflops_aten": 33_312},
    "bam": {"torch": 13_725_952, "fvcore": 7_001_024, "ptflops_aten": 6_882_532},
    "cbam": {"torch": 169_488, "fvcore": 185_488, "ptflops_aten": 85_832},
}


@pytest.mark.parametrize("module", MEASURED)
@pytest.mark.parametrize("counter", SUPPORTED)
def test_projection_reproduces_independently_measured_totals(module, counter):
    cost = ulsam_nas.attention_cost(module, 512, 14, 14)
    assert COUNTERS[counter].project(cost) == MEASURED[module][counter]


def test_three_supported_and_two_known_different_counters():
    assert SUPPORTED == ["torch", "fvcore", "ptflops_aten"]
    assert KNOWN_DIFFERENT == ["ptflops_pytorch", "thop"]


def test_difference_is_the_sum_of_its_terms_for_every_pair():
    cost = ulsam_nas.attention_cost("bam", 96, 7, 5, reduction=8)
    for a in COUNTERS:
        for b in COUNTERS:
            total = COUNTERS[a].project(cost) - COUNTERS[b].project(cost)
            assert sum(v for _, v in difference(cost, a, b)) == total


def test_fvcore_minus_ptflops_aten_is_bn_minus_bias_for_ulsam():
    cost = ulsam_nas.attention_cost("ulsam", 512, 14, 14, groups=4)
    n, g_hw = 512 * 196, 4 * 196
    assert dict(difference(cost, "fvcore", "ptflops_aten")) == {
        "bias_add": -(n + g_hw),
        "batch_norm": 2 * (n + g_hw),
    }


def test_included_and_dropped_terms_cover_the_cost():
    cost = ulsam_nas.attention_cost("cbam", 512, 14, 14)
    for convention in COUNTERS.values():
        included = {t for t, _, _ in convention.breakdown(cost)}
        dropped = {t for t, _ in convention.dropped(cost)}
        assert not included & dropped
        assert included | dropped == {t for t in (*cost.macs_by, *cost.ops) if (cost.macs_by | cost.ops)[t]}
