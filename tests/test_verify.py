"""Closed forms against real counters (each counter in its own process)."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.strategies import module_case
from ulsam_nas.attention import list_attention
from ulsam_nas.cli import main
from ulsam_nas.cost import conventions
from ulsam_nas.verify import Case, attention_cases, explain, verify
from ulsam_nas.verify.tracers import counter_version

pytestmark = pytest.mark.tracer


@st.composite
def case_batch(draw: st.DrawFn) -> list[Case]:
    cases = []
    for name in list_attention():
        for _ in range(5):
            m, h, w, config = draw(module_case(name, max_side=20))
            cases.append(Case(name, m, h, w, config))
    return cases


@settings(max_examples=4, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cases=case_batch())
def test_every_projection_equals_the_traced_count(cases):
    result = verify(cases, known_different=False)
    assert [r for r in result.rows if not r["match"]] == []
    assert all(p["match"] for p in result.params)
    assert len(result.rows) == 3 * len(cases)


def test_batch_of_three_gives_per_sample_totals():
    cases = attention_cases(None, 1, seed=7)
    single, triple = (
        verify(cases, batch=1, known_different=False),
        verify(cases, batch=3, known_different=False),
    )
    assert single.all_match and triple.all_match
    assert [r["traced"] for r in single.rows] == [r["traced"] for r in triple.rows]


def test_known_different_counters_are_explained_by_their_rules():
    result = verify(attention_cases(None, 2, seed=1))
    installed = {"ultralytics_thop"} if counter_version("ultralytics_thop") else set()
    assert {k["counter"] for k in result.known_different} == {"ptflops_pytorch", "thop", *installed}
    assert [(k["module"], k["counter"], k["residual"]) for k in result.known_different if k["residual"]] == []


def test_a_wrong_projection_is_reported_with_its_difference_by_term(monkeypatch):
    wrong = conventions.CounterConvention(
        "fvcore",
        "fvcore without BN",
        "MAC",
        {"conv": 1, "linear": 1, "matmul": 1, "global_avg_pool": 1},
        True,
        "deliberately wrong",
    )
    monkeypatch.setitem(conventions.COUNTERS, "fvcore", wrong)
    result = verify([Case("ulsam", 64, 9, 7, {"groups": 4})], known_different=False)
    assert not result.all_match
    (bad,) = [r for r in result.rows if not r["match"]]
    bn = 64 * 63 + 4 * 63
    assert bad["counter"] == "fvcore"
    assert bad["difference"].startswith(f"+{2 * bn:,} = ") and f"2 × batch_norm ({bn:,})" in bad["difference"]


def test_verify_command_json_and_exit_code(capsys, tmp_path):
    code = main(["verify", "--modules", "ulsam", "se", "--samples", "1", "--json", "--report", str(tmp_path)])
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    # Tracing takes seconds: a line as it starts and one as each counter finishes, on stderr.
    progress = captured.err.splitlines()
    assert progress[0].startswith("verify: tracing 4 cases at batch 1 with torch, fvcore, ptflops_aten")
    assert sorted(line.split()[1] for line in progress[1:4]) == ["fvcore", "ptflops_aten", "torch"]
    assert all(re.fullmatch(r"verify:   \w+ done \(\d/\d, \d+ s\)", line) for line in progress[1:4])
    assert code == 0 and doc["all_match"] is True
    assert {r["counter"] for r in doc["rows"]} == {"torch", "fvcore", "ptflops_aten"}
    assert set(doc["rows"][0]) >= {"module", "shape", "config", "counter", "expected", "traced", "match"}
    assert doc["versions"]["torch"].startswith("2.13")
    report = (tmp_path / "verification.md").read_text()
    known = {row["counter"] for row in doc["known_different"]}
    assert report.count("| ulsam") == 3 + len(known)  # three counters, the known-different ones
    assert (tmp_path / "verification.csv").read_text().startswith("module,channels")


def test_explain_non_local_tells_the_term_by_term_story():
    ex = explain(Case("non_local", 512, 14, 14, {}))
    by_counter = {c["counter"]: c for c in ex.counters}
    assert all(c["match"] for c in ex.counters)
    assert by_counter["torch"]["expected"] == 244_858_880
    assert {d["term"] for d in by_counter["ptflops_aten"]["drops"]} == {"batch_norm", "softmax", "mul", "add"}
    torch_vs_fvcore = next(d for d in ex.differences if (d["a"], d["b"]) == ("torch", "fvcore"))
    assert torch_vs_fvcore["terms"] == [
        {"term": "conv", "value": 102_760_448},
        {"term": "matmul", "value": 19_668_992},
        {"term": "batch_norm", "value": -200_704},
    ]
