"""Paired seed statistics against scipy, the fidelity schedule's stages, ties and the
recommendation, and the schedule on a simulated objective with known truth (no training)."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from scipy import stats

from ulsam_nas.search.noise import (
    detectable_difference,
    paired_comparison,
    pooled_sd,
    seeds_needed,
    summarize,
)
from ulsam_nas.search.schedule import Costs, Fidelity, Ladder, select, tie_sentence
from ulsam_nas.search.simulate import (
    MEASURED_NOISE,
    MEASURED_PAIRING,
    SimulatedObjective,
    example_space,
    run_schedule,
)

A = [0.7805, 0.7895, 0.7970, 0.7915, 0.7720, 0.7925]  # proxy-signal.md, variant a, seeds 0-5
C = [0.7875, 0.7985, 0.8070, 0.7965, 0.7960, 0.7750]  # variant c


# -- paired statistics -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("a", "b"),
    [(C, A), (A, C), ([0.5, 0.6, 0.55], [0.52, 0.57, 0.58]), ([1.0, 2.0], [0.0, 2.5])],
)
def test_paired_comparison_equals_scipy_ttest_rel(a, b):
    ours = paired_comparison(dict(enumerate(a)), dict(enumerate(b)))
    theirs = stats.ttest_rel(a, b)
    interval = theirs.confidence_interval(0.95)
    assert ours.difference == pytest.approx(statistics.fmean(np.subtract(a, b)), abs=1e-12)
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-9)
    assert (ours.ci_low, ours.ci_high) == pytest.approx((interval.low, interval.high), rel=1e-9)
    assert ours.tied == (interval.low <= 0 <= interval.high)


def test_paired_comparison_uses_common_seeds_only_and_needs_two():
    a = {0: 0.80, 1: 0.81, 2: 0.79, 7: 0.99}
    b = {0: 0.78, 1: 0.80, 2: 0.78, 9: 0.10}
    result = paired_comparison(a, b)
    assert result.seeds == (0, 1, 2)
    assert result.difference == pytest.approx((0.02 + 0.01 + 0.01) / 3)
    single = paired_comparison({0: 0.8}, {0: 0.7})
    assert single.tied is None and single.ci_low is None and single.difference == pytest.approx(0.1)
    assert paired_comparison({0: 0.8}, {1: 0.7}).n == 0


def test_identical_differences_are_not_a_tie_unless_zero():
    assert paired_comparison({0: 0.8, 1: 0.9}, {0: 0.7, 1: 0.8}).tied is False
    assert paired_comparison({0: 0.8, 1: 0.9}, {0: 0.8, 1: 0.9}).tied is True


def test_summary_standard_error_equals_scipy_sem():
    summary = summarize(A)
    assert summary.mean == pytest.approx(np.mean(A))
    assert summary.se == pytest.approx(stats.sem(A))
    assert summarize([0.5]).se is None


def test_power_figures_match_the_proxy_signal_note():
    # proxy-signal.md §4: σ 1.21 points, unpaired arms (sd of a difference √2·σ), Δ 0.5 → 92 seeds.
    assert seeds_needed(math.sqrt(2) * 1.21, 0.5) == 92
    assert seeds_needed(math.sqrt(2) * 0.45, 0.5) == 13
    # ... and the detectable difference with 5 seeds per arm is 2.8·σ·√(2/5) ≈ 2.1 points.
    assert detectable_difference(math.sqrt(2) * 1.21, 5) == pytest.approx(2.14, abs=0.01)
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    assert detectable_difference(1.0, 4) == pytest.approx(z / 2)


def test_pooled_sd_equals_the_anova_within_group_estimate():
    groups = [A, C, [0.8, 0.81], [0.5]]
    sd, dof = pooled_sd(groups)
    within = sum(((np.array(g) - np.mean(g)) ** 2).sum() for g in groups)
    assert dof == 5 + 5 + 1 and sd == pytest.approx(math.sqrt(within / dof))
    assert pooled_sd([[0.5], [0.6]]) == (None, 0)


# -- the schedule ------------------------------------------------------------------------------
LADDER = Ladder(
    fidelities=(Fidelity(2, 5000), Fidelity(6, 10000)),
    seed_counts=(1, 2),
    base_seed=10,
    reduction_factor=3,
    top_k=2,
    confirm_seeds=5,
    reference_seeds=3,
)


def costs_for(keys):
    return {k: Costs(macs=1000 + i, params=10) for i, k in enumerate(keys)}


def test_stages_halve_then_confirm_with_paired_seeds():
    keys = [f"c{i}" for i in range(9)]
    costs = costs_for(keys)
    results = {0: {k: {10: 0.5 + 0.01 * i} for i, k in enumerate(keys)}}
    results[0]["c0"].update({11: 0.5, 12: 0.5})  # the reference's extra seeds
    assert LADDER.stage_names() == ["search", "rung 1", "confirm"]
    stage, requests = LADDER.pending(results, costs, reference="c0")
    # ⌈9/3⌉ = 3 best by rung-0 accuracy, plus the reference with 3 seeds.
    assert stage == "rung 1"
    assert [(r.key, r.seeds) for r in requests] == [
        ("c8", (10, 11)),
        ("c7", (10, 11)),
        ("c6", (10, 11)),
        ("c0", (10, 11, 12)),
    ]
    results[1] = {"c8": {10: 0.80, 11: 0.81}, "c7": {10: 0.82, 11: 0.83}, "c6": {10: 0.7, 11: 0.7}}
    results[1]["c0"] = {10: 0.6, 11: 0.6, 12: 0.6}
    stage, requests = LADDER.pending(results, costs, reference="c0")
    assert stage == "confirm"
    # The top 2 of rung 1 and the reference, each with 5 fresh seeds (base + 1000 + i): the
    # seeds that promoted them are not reused, so their luck does not carry into the confirmation.
    fresh = (1010, 1011, 1012, 1013, 1014)
    assert [(r.key, r.rung, r.seeds) for r in requests] == [
        ("c7", 1, fresh),
        ("c8", 1, fresh),
        ("c0", 1, fresh),
    ]
    assert requests[0].missing(results) == fresh


def test_a_missing_reference_seed_is_requested_before_any_promotion():
    results = {0: {"a": {0: 0.5}, "b": {0: 0.6}}}
    ladder = Ladder((Fidelity(1, None),), (1,), reference_seeds=2, top_k=1)
    stage, requests = ladder.pending(results, costs_for("ab"), reference="a")
    assert stage == "search" and [(r.key, r.seeds) for r in requests] == [("a", (0, 1))]


def test_later_seeds_never_reshuffle_a_finished_stage():
    costs = costs_for(["a", "b", "c"])
    ladder = Ladder((Fidelity(1, 100), Fidelity(2, 100)), (1, 1), top_k=1, reduction_factor=2)
    results = {0: {"a": {0: 0.9}, "b": {0: 0.8}, "c": {0: 0.1}}}
    _, first = ladder.pending(results, costs, None)
    results[0]["a"].update({1: 0.0, 2: 0.0})  # extra seeds elsewhere do not change rung 1's input
    _, again = ladder.pending(results, costs, None)
    assert first == again and [r.key for r in first] == ["a", "b"]


def test_multi_objective_promotes_non_dominated_fronts_first():
    ladder = Ladder(
        (Fidelity(1, 100), Fidelity(2, 100)), (1, 1), top_k=1, reduction_factor=2, multi_objective=True
    )
    costs = {"acc": Costs(100, 1), "cheap": Costs(10, 1), "dominated": Costs(100, 1), "mid": Costs(50, 1)}
    results = {0: {"acc": {0: 0.9}, "cheap": {0: 0.5}, "dominated": {0: 0.4}, "mid": {0: 0.45}}}
    assert ladder.rank(results, 0, costs) == ["acc", "cheap", "mid", "dominated"]


def test_ties_recommend_the_cheapest_and_say_so_in_plain_words():
    costs = {"g4": Costs(9_800_000, 1, 1.0), "g16": Costs(10_000_000, 1, 1.0), "far": Costs(5_000_000, 1)}
    g4 = [0.800, 0.811, 0.796, 0.805, 0.802]
    g16 = [0.804, 0.806, 0.801, 0.809, 0.800]
    far = [0.70, 0.71, 0.69, 0.70, 0.705]
    confirm = lambda values: {1000 + i: v for i, v in enumerate(values)}  # noqa: E731
    results = {0: {"g4": confirm(g4), "g16": confirm(g16), "far": confirm(far)}}
    ladder = Ladder((Fidelity(2, 100),), (1,), top_k=3, confirm_seeds=5)
    selection = select(ladder, results, costs)
    assert selection.confirmed and selection.best == "g16"
    tied = {r.key: r.tied_with_best for r in selection.ranked}
    assert tied == {"g16": None, "g4": True, "far": False}
    assert selection.recommended == "g4"
    sentence = tie_sentence(selection, {"g4": "g=4", "g16": "g=16", "far": "far"}, costs)
    assert sentence.startswith("g=16 and g=4 are tied within ±")
    assert "g=4 costs 0.2 MMACs less than g=16: recommended" in sentence
    assert selection.detectable is not None and selection.detectable > 0


def test_one_seed_says_no_tie_can_be_judged():
    results = {0: {"a": {0: 0.8}, "b": {0: 0.79}}}
    ladder = Ladder((Fidelity(2, 100),), (1,))
    selection = select(ladder, results, costs_for("ab"))
    assert [r.tied_with_best for r in selection.ranked] == [None, None]
    assert not selection.confirmed and any("no tie can be judged" in n for n in selection.notes)
    assert "no tie can be judged" in tie_sentence(selection, {"a": "a", "b": "b"}, costs_for("ab"))


# -- simulated studies ---------------------------------------------------------------------------
NOISE = (MEASURED_NOISE,)
SIM_LADDER = Ladder(  # the default study's shape: one rung, then a confirmation on fresh seeds
    (Fidelity(2, 5000),),
    (1,),
    top_k=3,
    confirm_seeds=8,
    reference_seeds=3,
    confirm_target=0.005,
    confirm_max_seeds=12,
)


def simulated_study(seed: int, sampled: int = 20):
    rng = np.random.default_rng(seed)
    true, costs, reference = example_space(rng, fidelities=1)
    objective = SimulatedObjective(true, NOISE, pairing=MEASURED_PAIRING, study_seed=seed)
    keys = sorted(true)
    chosen = [keys[i] for i in rng.choice(len(keys), sampled)]
    return objective, run_schedule(SIM_LADDER, objective, chosen, costs, reference)


def test_the_confirmation_stage_picks_a_truly_best_candidate_in_95_percent_of_200_studies():
    best_hits = recommended_hits = 0
    for seed in range(200):
        objective, outcome = simulated_study(seed)
        selection = outcome.selection
        assert selection is not None and selection.best is not None
        assert selection.detectable is not None and selection.tolerance() is not None
        truly_best = objective.truly_best(r.key for r in selection.ranked)
        # The named best is truly best or within the difference the final stage can detect ...
        best_hits += truly_best - objective.true[selection.best][-1] <= selection.detectable
        # ... and the recommended (cheapest tied) one within the tolerance the study states for it.
        recommended_hits += outcome.regret <= selection.tolerance()
    assert best_hits >= 190, f"{best_hits}/200"
    assert recommended_hits >= 190, f"{recommended_hits}/200"


def tie_rate(gap: float, studies: int = 100) -> float:
    """How often the runner-up is reported tied when the true gap between two confirmed
    candidates is ``gap`` (accuracy fraction)."""
    ladder = Ladder((Fidelity(6, 10000),), (2,), top_k=2, confirm_seeds=5)
    costs = {"a": Costs(100, 1), "b": Costs(90, 1)}
    tied = 0
    for seed in range(studies):
        objective = SimulatedObjective({"a": [0.86 + gap], "b": [0.86]}, [0.0045], 0.3, seed)
        outcome = run_schedule(ladder, objective, ["a", "b"], costs)
        assert outcome.selection is not None
        runner_up = next(r for r in outcome.selection.ranked if r.key != outcome.selection.best)
        tied += bool(runner_up.tied_with_best)
    return tied / studies


def test_ties_are_reported_below_the_detectable_difference_and_not_far_above_it():
    detectable = detectable_difference(0.0045 * math.sqrt(2 * 0.7), 5)
    assert tie_rate(0.0) >= 0.9
    assert tie_rate(detectable / 4) >= 0.75
    assert tie_rate(3 * detectable) <= 0.05


def test_the_confirmation_adds_seeds_until_it_detects_the_target_and_stops_at_the_maximum():
    ladder = Ladder(
        (Fidelity(2, 100),), (1,), top_k=2, confirm_seeds=5, confirm_target=0.005, confirm_max_seeds=12
    )
    costs = costs_for(["a", "b", "c"])
    results = {0: {"a": {0: 0.9}, "b": {0: 0.8}, "c": {0: 0.1}}}
    stage, requests = ladder.pending(results, costs, None)
    assert stage == "confirm" and [len(r.seeds) for r in requests] == [5, 5]
    rng = np.random.default_rng(0)

    def fill(spread: float, count: int) -> None:
        for key, base in (("a", 0.85), ("b", 0.84)):
            found = results[0][key]
            for seed in ladder.confirm_seed_list(count):
                found.setdefault(seed, base + spread * rng.standard_normal())

    fill(0.01, 5)  # paired sd ≈ 1.4 points: 5 seeds detect ≈ 1.8 points, far from 0.5
    _, requests = ladder.pending(results, costs, None)
    assert [len(r.seeds) for r in requests] == [12, 12]  # as many as the estimate says, at most 12
    fill(0.01, 12)
    assert ladder.pending(results, costs, None) == (None, [])  # the maximum ends it, detected or not
    quiet = Ladder(
        (Fidelity(2, 100),), (1,), top_k=2, confirm_seeds=5, confirm_target=0.005, confirm_max_seeds=12
    )
    results = {0: {"a": {0: 0.9}, "b": {0: 0.8}}}
    for seed in quiet.confirm_seed_list(5):
        results[0]["a"][seed] = 0.85 + 0.0005 * rng.standard_normal()
        results[0]["b"][seed] = 0.84 + 0.0005 * rng.standard_normal()
    assert quiet.pending(results, costs, None) == (None, [])  # 5 seeds already detect 0.5 points
