"""Factor effects from every trained trial: a synthetic table with known effects (the interval
covers the truth; a zero effect is reported unresolved), and what can and cannot be estimated."""

from __future__ import annotations

import numpy as np

from ulsam_nas.networks.plan import parse_plan
from ulsam_nas.search.effects import effect_sentence, estimate_effects

POSITIONS = [7, 9, 11, 13]
TRUTH = {("width", "α 0.3125 vs 0.25"): 0.02, ("replace", "replace instead of insert, per module"): -0.005}


def synthetic_table(seed: int, candidates: int = 40, noise: float = 0.004):
    """Observations (width, plan, seed, accuracy) with known effects: +2 points for α 0.3125,
    −0.5 points per replace, nothing for g, position or the number of modules; a seed offset."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(candidates):
        width = float(rng.choice([0.25, 0.28125, 0.3125]))
        positions = sorted(rng.choice(POSITIONS, size=rng.integers(0, 3), replace=False))
        plan = ",".join(
            f"{rng.choice(['insert', 'replace'])}@{p}:ulsam:groups={rng.choice([1, 2, 4, 8, 16])}"
            for p in positions
        )
        placements = parse_plan(plan)
        for s in range(2):
            accuracy = (
                0.8
                + 0.02 * (width == 0.3125)
                + 0.01 * (width == 0.28125)
                - 0.005 * sum(p.action == "replace" for p in placements)
                + 0.003 * s
                + noise * rng.standard_normal()
            )
            rows.append((width, plan, s, accuracy))
    return rows


def test_the_intervals_cover_the_true_effects_and_a_zero_effect_is_unresolved():
    covered = {key: 0 for key in TRUTH}
    g_resolved = 0
    studies = 100
    for seed in range(studies):
        effects = {(e["factor"], e["level"]): e for e in estimate_effects(synthetic_table(seed), POSITIONS)}
        for key, truth in TRUTH.items():
            covered[key] += effects[key]["ci_low"] <= truth <= effects[key]["ci_high"]
        g_resolved += effects[("g", "per doubling")]["resolved"]
    for key in TRUTH:
        assert covered[key] >= 88, (key, covered[key])  # a 95% interval: ~95 of 100 (binomial slack)
    assert g_resolved <= 12  # g has no effect: resolved only by chance (~5 of 100)


def test_one_table_in_words():
    effects = {(e["factor"], e["level"]): e for e in estimate_effects(synthetic_table(0), POSITIONS)}
    width = effects[("width", "α 0.3125 vs 0.25")]
    assert width["resolved"] and 0.015 < width["estimate"] < 0.025 and width["n"] > 0
    g = effects[("g", "per doubling")]
    assert not g["resolved"] and effect_sentence(g).startswith(
        "g (per doubling): no effect resolved, 95% interval"
    )
    assert effect_sentence(width).startswith("width (α 0.3125 vs 0.25): +")


def test_a_factor_that_never_varies_apart_is_not_estimable_and_no_dof_means_no_interval():
    rows = [(0.25, "", 0, 0.8), (0.25, "replace@9:ulsam:groups=4", 0, 0.81)]
    effects = {e["factor"]: e for e in estimate_effects(rows, POSITIONS)}
    assert effects["modules"]["estimate"] is not None and effects["modules"]["ci_low"] is None
    assert effects["replace"]["estimate"] is None  # collinear with modules here
    assert "not estimable" in effect_sentence(effects["replace"])
    assert estimate_effects([], POSITIONS) == []
