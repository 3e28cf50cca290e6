"""The sampler's structured parameters: conditionality, the inverse mapping, exact counts and
uniform samples, infeasible draws that never train, canonical dedup, and refusing old studies."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import optuna
import pytest

import ulsam_nas
from ulsam_nas.backbones import backbone_table, plan_text, resolve_plan
from ulsam_nas.cli import main
from ulsam_nas.errors import InvalidInput
from ulsam_nas.search.config import Budget, load_study_config
from ulsam_nas.search.network import study_network
from ulsam_nas.search.parameters import ParameterSpace
from ulsam_nas.search.problem import prepare
from ulsam_nas.search.space import SearchSpace
from ulsam_nas.search.worker import Search

ROOT = Path(__file__).resolve().parent.parent
NETWORK = {"resolution": 32, "num_classes": 10, "in_channels": 1, "stem": "small"}
SHAPE = {"resolution": 32, "num_classes": 10, "in_channels": 1}  # the data's; the stem is the space's
SPACE = {
    "backbone": "mobilenet_v1",
    "stem": "small",
    "width_mults": [0.25, 0.5],
    "positions": [{"index": 9, "actions": ["insert", "replace"]}, {"index": 12, "actions": ["insert"]}],
    "groups": [1, 4],
    "max_modules": 1,
}


def parameter_space(**changes: object) -> ParameterSpace:
    return ParameterSpace(
        space := SearchSpace.model_validate({**SPACE, **changes}),
        study_network(space, **SHAPE),
        Budget(mmacs=12.5),
    )


def every_configuration(parameters: ParameterSpace) -> list[tuple[float, str]]:
    return [
        parameters.configuration(int(w), [int(c) for c in row])
        for widths, choices in parameters.enumerate()
        for w, row in zip(widths, choices, strict=True)
    ]


def test_parameters_are_conditional_on_an_action_and_ordered_where_the_choice_is():
    parameters = parameter_space(modules=["ulsam", "se"])
    d = parameters.distributions
    assert set(d) == {"width", "at9", "at9.module", "at9.g", "at12", "at12.module", "at12.g"}
    assert isinstance(d["width"], optuna.distributions.IntDistribution)  # ordered
    assert isinstance(d["at9.g"], optuna.distributions.IntDistribution)  # ordered over [1, 4]
    assert d["at9"].choices == ("none", "insert", "replace") and d["at12"].choices == ("none", "insert")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = collections.Counter()
    for _ in range(200):
        trial = study.ask()
        parameters.suggest(trial)
        for index in (9, 12):
            placed = trial.params[f"at{index}"] != "none"
            assert (f"at{index}.module" in trial.params) == placed
            assert (f"at{index}.g" in trial.params) == (
                placed and trial.params[f"at{index}.module"] == "ulsam"
            )
        seen[len(trial.params)] += 1
        study.tell(trial, 0.0)
    assert len(seen) > 1  # some draws place modules, some do not


def test_params_of_is_the_inverse_of_suggest_for_every_configuration():
    parameters = parameter_space(max_modules=2)
    for width, plan in every_configuration(parameters):
        params = parameters.params_of(width, plan)
        study = optuna.create_study()
        study.enqueue_trial(params)
        trial = study.ask()
        assert parameters.suggest(trial) == (width, plan)
        assert trial.params == params


def test_counts_are_exact_and_samples_uniform_over_the_configurations():
    parameters = parameter_space(max_modules=2, groups=[1, 2, 4])
    found = every_configuration(parameters)
    assert len(found) == len(set(found)) == sum(parameters.configuration_counts().values())
    widths, choices = parameters.sample(np.random.default_rng(0), 30_000)
    drawn = collections.Counter(
        parameters.configuration(int(w), [int(c) for c in row])
        for w, row in zip(widths, choices, strict=True)
    )
    assert set(drawn) == set(found)
    expected = len(widths) / len(found)
    chi2 = sum((n - expected) ** 2 / expected for n in drawn.values())
    assert chi2 < len(found) + 4 * np.sqrt(2 * len(found))  # well inside the χ² distribution's bulk


def test_the_cheapest_configuration_is_the_brute_force_minimum():
    parameters = parameter_space(max_modules=2, width_mults=[0.25, 0.3125, 0.5])
    costs = [parameters.assess(w, plan).candidate for w, plan in every_configuration(parameters)]
    assert parameters.cheapest().macs == min(c.macs for c in costs if c is not None)
    assert parameters.fewest_params().params == min(c.params for c in costs if c is not None)


def small_study(tmp_path: Path, extra: str = "", budget: float = 12.5) -> Path:
    (tmp_path / "space.yaml").write_text(json.dumps(SPACE))
    study = tmp_path / "study.yaml"
    study.write_text(
        f"name: t\nspace: space.yaml\nbudget: {{mmacs: {budget}}}\n"
        "proxy: {data: synthetic, train_images: 128, val_images: 64, epochs: 1, batch_size: 64, "
        "precise_bn: 64}\n"
        f"trials: 4\n{extra}"
    )
    return study


def test_an_infeasible_draw_never_reaches_training_and_teaches_the_sampler(tmp_path, monkeypatch):
    import ulsam_nas.search.evaluate as evaluate

    trained: list[str] = []
    real = evaluate.proxy_train

    def spy(build, data, settings, seed, *args, **kwargs):
        trained.append(str(build()))
        return real(build, data, settings, seed, *args, **kwargs)

    monkeypatch.setattr(evaluate, "proxy_train", spy)
    search = Search(prepare(load_study_config(small_study(tmp_path))), baselines=False)
    # Queue draws outside every constraint: two modules (max 1), g=4... at α 0.5 (45 MMACs).
    parameters = search.problem.parameters
    two = {"width": 0, "at9": "insert", "at9.g": 0, "at12": "insert", "at12.g": 0}
    wide = parameters.params_of(0.5, "insert@12:ulsam:groups=4")
    search.study.enqueue_trial(two)
    search.study.enqueue_trial(wide)
    assert search.search_trial() == "infeasible" and search.search_trial() == "infeasible"
    assert trained == []  # nothing was built for training
    first, second = search.study.get_trials()[-2:]
    assert first.constraints["modules"] == 1 and "2 modules" in first.user_attrs["infeasible"][0]
    assert second.constraints["macs"] > 0 and "over the budget" in second.user_attrs["infeasible"][0]
    assert first.state.name == second.state.name == "COMPLETE"
    search.run(2)  # the target counts trained trials only: two more were trained
    assert sum(t.user_attrs.get("trained_steps", 0) > 0 for t in search.study.get_trials()) == len(trained)


def test_two_parameter_sets_that_build_the_same_network_share_their_seeds(tmp_path):
    search = Search(prepare(load_study_config(small_study(tmp_path))), baselines=False)
    plain = {"width": 0, "at9": "none", "at12": "none"}
    # The same plain network with a g for a position where nothing is placed: ignored, same key.
    search.study.enqueue_trial({**plain, "at9.g": 1})
    search.study.enqueue_trial(plain)
    search.run(2)
    same = [t for t in search.study.get_trials() if t.user_attrs.get("candidate") == "0.25|"]
    assert len(same) >= 2
    trained = [t for t in same if t.user_attrs.get("trained_seeds")]
    assert len(trained) == 1 and any(t.user_attrs.get("duplicate_of") == trained[0].number for t in same)


def test_a_study_made_before_the_structured_parameters_is_refused_in_one_line(tmp_path, capsys):
    path = small_study(tmp_path)
    config = load_study_config(path)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(config.storage_url))
    old = optuna.create_study(study_name="t", storage=storage, direction="maximize")
    old.set_user_attr("identity", {"space": "x", "budget": {}, "objective": "accuracy", "proxy": {}})
    with pytest.raises(InvalidInput, match=r"made by an earlier ulsam-nas .* cannot be resumed"):
        Search(prepare(config))
    assert main(["search", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--study-name" in err[0]


def test_the_default_dry_run_needs_no_data_and_offers_at_least_three_widths(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ULSAM_NAS_DATA", str(tmp_path))  # no Fashion-MNIST there
    storage = tmp_path / "s.journal"
    code = main(
        ["search", str(ROOT / "studies" / "default.yaml"), "--dry-run", "--json", "--storage", str(storage)]
    )
    assert code == 0
    plan = json.loads(capsys.readouterr().out)
    assert sum(1 for n in plan["feasible_by_width"].values() if n > 0) >= 3
    assert plan["counted"] == "exact" and plan["feasible"] == sum(plan["feasible_by_width"].values())
    assert plan["data"] == {
        "train_images": 5000,
        "validation_images": 10000,
        "validation_from": "training split",
        "test_images": 10000,
        "test_from": "official test split",
    }
    assert plan["data_installed"] is False and plan["estimated_minutes"] > 0
    expected = plan["expected_detectable_difference"]
    # 12 paired seeds at the measured paired sd (0.78) detect ~0.63 points; 0.5 would need ~20
    # seeds and a ~40-minute main job (README "Noise"), so the default trades it for time.
    assert expected["seeds"] == 12 and 0.6 <= expected["points"] <= 0.65
    assert not storage.exists()


def test_a_large_space_is_estimated_by_uniform_samples_with_an_interval(tmp_path, capsys):
    space = {
        "backbone": "mobilenet_v2",
        "stem": "small",
        "width_mults": [0.5, 0.75, 1.0],
        "positions": [
            {"index": i, "actions": ["insert", "replace"]} for i in (3, 5, 6, 8, 9, 10, 12, 13, 15, 16)
        ],
        "groups": [1, 2, 4, 8],
        "max_modules": 4,
    }
    (tmp_path / "space.yaml").write_text(json.dumps(space))
    study = tmp_path / "study.yaml"
    study.write_text("name: big\nspace: space.yaml\nbudget: {mmacs: 60}\nproxy: {data: synthetic}\n")
    assert main(["search", str(study), "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["configurations"] > 1_000_000 and plan["counted"].startswith("estimated from")
    low, high = plan["feasible_interval"]
    assert low <= plan["feasible"] <= high and 0 < plan["feasible"] < plan["configurations"]


def test_a_space_may_search_over_every_module_and_its_closed_forms_hold():
    # The later five (coord: timm's name for ca) beside ULSAM: each placed with its defaults.
    parameters = parameter_space(modules=["ulsam", "gc", "eca", "triplet", "simam", "coord", "ca"])
    assert parameters.space.modules == ["ulsam", "gc", "eca", "triplet", "simam", "ca"]
    found = every_configuration(parameters)
    placed = {p.split(":")[1] for _, plan in found for p in plan.split(",") if plan}
    assert placed == {"ulsam", "gc", "eca", "triplet", "simam", "ca"}
    for width, plan in found:
        assessment = parameters.assess(width, plan)
        if assessment.candidate is None:
            continue
        expected = ulsam_nas.network_cost("mobilenet_v1", width, plan=plan, **NETWORK)
        assert (assessment.candidate.macs, assessment.candidate.params) == (expected.macs, expected.params)
        assert parameters.params_of(width, plan) is not None


V3_SPACE = {
    "backbone": "mobilenet_v3_small",
    "stem": "small",
    "width_mults": [0.75],
    "positions": [{"index": 4, "actions": ["swap", "remove"]}, {"index": 9, "actions": ["swap", "remove"]}],
    "groups": [2, 4],
    "modules": ["ulsam", "eca"],
    "max_modules": 2,
}


def test_se_blocks_keep_swap_or_remove_and_every_draw_round_trips():
    parameters = ParameterSpace(
        space := SearchSpace.model_validate(V3_SPACE), study_network(space, **SHAPE), Budget()
    )
    assert parameters.distributions["at4"].choices == ("none", "swap", "remove")
    configurations = every_configuration(parameters)
    # Per block: keep the SE, ULSAM g 2 or 4, ECA, or remove: 5 × 5.
    assert len(configurations) == len(set(configurations)) == 25
    assert (0.75, "swap@4:none,swap@9:ulsam:groups=4") in configurations
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for width, plan in configurations:
        params = parameters.params_of(width, plan)
        study.enqueue_trial(params)
        drawn_width, drawn_plan = parameters.suggest(study.ask())
        table = backbone_table("mobilenet_v3_small", drawn_width, **NETWORK)
        assert (drawn_width, plan_text(resolve_plan(table, drawn_plan))) == (width, plan)
    removed = parameters.assess(0.75, "swap@4:none,swap@9:none").candidate
    assert removed is not None
    assert (
        removed.params
        == ulsam_nas.network_cost("mobilenet_v3_small", 0.75, "swap@4:none,swap@9:none", **NETWORK).params
    )


def test_a_space_that_swaps_where_there_is_no_se_is_refused():
    space = SearchSpace.model_validate({**V3_SPACE, "positions": [{"index": 2, "actions": ["swap"]}]})
    with pytest.raises(InvalidInput, match="position 2: swap is not allowed there in mobilenet_v3_small"):
        ParameterSpace(space, study_network(space, **SHAPE), Budget())
