"""Whole networks with random plans against the real counters (slow: CI runs it)."""

from __future__ import annotations

import json

import pytest

from ulsam_nas.cli import main
from ulsam_nas.verify import network_cases, verify

pytestmark = [pytest.mark.tracer, pytest.mark.slow]


def test_100_random_networks_equal_every_counter():
    cases = network_cases(100, seed=2026)
    assert len({(c.backbone, c.width_mult, c.plan, c.resolution, c.stem) for c in cases}) > 90
    assert sum(bool(c.plan) for c in cases) > 70
    result = verify(cases)
    assert [r for r in result.rows if not r["match"]] == []
    assert all(p["match"] for p in result.params)
    assert [k for k in result.known_different if k["residual"] != 0] == []


@pytest.mark.parametrize(
    ("backbone", "plan"),
    [
        ("mobilenet_v2", "replace@5:groups=2,insert@16:cbam"),
        # A swapped-in module sits inside its block and has a row of its own.
        ("mobilenet_v3_small", "swap@*:ulsam:groups=4,swap@6:none,replace@3:eca"),
        ("resnet18", "replace@2:se,insert@5:ulsam"),
    ],
)
def test_cost_breakdown_with_trace_matches_fvcore_per_layer(capsys, backbone, plan):
    argv = [
        "cost",
        "--backbone",
        backbone,
        "--width-mult",
        "0.5",
        "--resolution",
        "64",
        "--plan",
        plan,
        "--breakdown",
        "--trace",
        "--json",
    ]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["fvcore_traced"] == doc["fvcore_expected"]
    assert all(row["fvcore_traced"] == row["fvcore_expected"] for row in doc["layers"])
