"""Projections of the exact cost onto each counter's convention (no tracing: fast)."""

from __future__ import annotations

import json

import pytest

import ulsam_nas
from ulsam_nas.cost.conventions import (
    BINARY_MEGA,
    COUNTERS,
    KNOWN_DIFFERENT,
    SUPPORTED,
    difference,
    published_readings,
    train_mode_total,
)

# Totals measured with each counter on the official-structure modules at m=512, 14×14, r=16,
# t=64, g=4 (shared/design/counters.md §2; torch = FLOPs, the rest MACs).
MEASURED = {
    "ulsam": {"torch": 401_408, "fvcore": 402_976, "ptflops_aten": 301_840},
    "non_local": {"torch": 244_858_880, "fvcore": 122_630_144, "ptflops_aten": 122_680_320},
    "a2": {"torch": 54_591_488, "fvcore": 27_295_744, "ptflops_aten": 27_433_728},
    "se": {"torch": 65_536, "fvcore": 133_120, "ptflops_aten": 33_312},
    "bam": {"torch": 13_725_952, "fvcore": 7_001_024, "ptflops_aten": 6_882_532},
    "cbam": {"torch": 169_488, "fvcore": 185_488, "ptflops_aten": 85_832},
    # Traced by `ulsam-nas verify` (torch 2.13, fvcore 0.1.5, ptflops 0.7.5); the official
    # structures trace the same (tests/test_official_parity.py).  k = 5, p = 32, d = 16.
    "gc": {"torch": 466_944, "fvcore": 233_632, "ptflops_aten": 234_212},
    "eca": {"torch": 5_120, "fvcore": 102_912, "ptflops_aten": 2_560},
    "triplet": {"torch": 2_848_272, "fvcore": 1_453_200, "ptflops_aten": 1_424_136},
    "simam": {"torch": 0, "fvcore": 0, "ptflops_aten": 0},
    "ca": {"torch": 917_504, "fvcore": 660_352, "ptflops_aten": 473_536},
}


# ultralytics-thop 2.2.3's thop.profile on the same modules (defaults, 512×14×14, batch 1); the
# same rules hold on random shapes and on the backbones (tests/test_ultralytics_thop.py).
MEASURED_ULTRALYTICS_THOP = {
    "non_local": 122_830_848,
    "a2": 27_295_744,
    "se": 32_768,
    "bam": 6_938_368,
    "cbam": 85_528,
    "ulsam": 605_248,
    "gc": 233_600,
    "eca": 2_560,
    "triplet": 1_482_264,
    "simam": 0,
    "ca": 460_544,
}


@pytest.mark.parametrize("module", MEASURED)
@pytest.mark.parametrize("counter", SUPPORTED)
def test_projection_reproduces_independently_measured_totals(module, counter):
    cost = ulsam_nas.attention_cost(module, 512, 14, 14)
    assert COUNTERS[counter].project(cost) == MEASURED[module][counter]


@pytest.mark.parametrize("module", MEASURED_ULTRALYTICS_THOP)
def test_ultralytics_thop_projection_reproduces_its_measured_totals(module):
    cost = ulsam_nas.attention_cost(module, 512, 14, 14)
    assert COUNTERS["ultralytics_thop"].project(cost) == MEASURED_ULTRALYTICS_THOP[module]


def test_three_supported_and_three_known_different_counters():
    assert SUPPORTED == ["torch", "fvcore", "ptflops_aten"]
    assert KNOWN_DIFFERENT == ["ptflops_pytorch", "thop", "ultralytics_thop"]


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


def test_binary_mega_reproduces_eca_net_s_resnet_50_figure():
    # ECA-Net's README: ResNet-50 "24.37M" params = 25,557,032 / 2^20.
    assert f"{25_557_032 / BINARY_MEGA:.2f}" == "24.37"


def test_readings_list_train_mode_only_where_a_counter_changes():
    readings = {
        r["what"]: r["count"] for r in published_readings(ulsam_nas.attention_cost("triplet", 64, 14, 14))
    }
    bn = ulsam_nas.attention_cost("triplet", 64, 14, 14).ops["batch_norm"]
    assert readings["fvcore (MAC), train mode"] - readings["fvcore (MAC), eval mode"] == 3 * bn
    assert "thop (MAC), eval or train" in readings
    assert "ultralytics_thop (MAC), eval or train" in readings


@pytest.mark.tracer
@pytest.mark.parametrize("module", ["ca", "triplet", "cbam", "ulsam", "gc"])
def test_train_mode_rules_equal_fvcore_and_thop_traced_in_train_mode(module):
    # In a fresh process per counter, as verify traces (thop patches nothing global, fvcore
    # neither; ptflops is not run here).
    import subprocess
    import sys

    code = (
        "import json, sys, copy, warnings, logging, torch, ulsam_nas\n"
        "warnings.filterwarnings('ignore'); logging.disable(logging.CRITICAL)\n"
        "from fvcore.nn import FlopCountAnalysis\n"
        "import thop\n"
        f"m = ulsam_nas.create_attention({module!r}, 64).train()\n"
        "x = torch.randn(2, 64, 14, 14)\n"
        "a = FlopCountAnalysis(m, (x,))\n"
        "a.unsupported_ops_warnings(False); a.uncalled_modules_warnings(False)\n"
        "f = a.total()\n"
        "t = thop.profile(copy.deepcopy(m), inputs=(x,), verbose=False)[0]\n"
        "print(json.dumps([f / 2, t / 2]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    fvcore_train, thop_train = json.loads(out.strip().splitlines()[-1])
    cost = ulsam_nas.attention_cost(module, 64, 14, 14)
    assert fvcore_train == train_mode_total(cost, "fvcore")
    assert thop_train == train_mode_total(cost, "thop") == COUNTERS["thop"].project(cost)
