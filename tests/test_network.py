"""The network a study searches over (ulsam_nas.search.network): a built-in backbone or one the
user brings, with the width as a factory argument, positions by path or pattern."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ulsam_nas import analyze
from ulsam_nas.cli import main
from ulsam_nas.errors import InvalidInput
from ulsam_nas.networks import Placement
from ulsam_nas.networks.batch import CostTable
from ulsam_nas.search.config import Budget, load_study_config
from ulsam_nas.search.create import create_or_load
from ulsam_nas.search.network import BroughtNetwork, _traced, network_of_attrs, study_network
from ulsam_nas.search.parameters import ParameterSpace
from ulsam_nas.search.problem import prepare
from ulsam_nas.search.space import SearchSpace
from ulsam_nas.search.storage import open_storage

ROOT = Path(__file__).resolve().parent.parent
MODEL = str(ROOT / "examples" / "mynets.py") + ":resnet_like"
SHAPE = {"resolution": 16, "num_classes": 10, "in_channels": 1}
SPACE = {
    "model": MODEL,
    "model_args": {"num_classes": 10, "in_channels": 1},
    "width_arg": "width",
    "width_mults": [4, 8],
    "positions": [{"path": "layer*.1", "actions": ["insert", "replace"]}, {"path": "layer2.0"}],
    "groups": [1, 2, 4],
    "max_modules": 2,
}


def parameters_of(budget: float | None = None, **changes: object) -> ParameterSpace:
    space = SearchSpace.model_validate({**SPACE, **changes})
    return ParameterSpace(space, study_network(space, **SHAPE), Budget(mmacs=budget))


def test_patterns_become_positions_and_every_configuration_costs_what_the_trace_counts():
    parameters = parameters_of()
    network = parameters.network.at(8)
    assert [network.where(p.index) for p in parameters.positions] == [
        "layer1.1",
        "layer2.0",
        "layer2.1",
        "layer3.1",
    ]
    assert [p.actions for p in parameters.positions] == [
        ("insert", "replace"),
        ("insert",),
        *[("insert", "replace")] * 2,
    ]
    widths, choices = parameters.sample(np.random.default_rng(0), 12)
    for w, row in zip(widths, choices, strict=True):
        width, plan = parameters.configuration(int(w), [int(c) for c in row])
        candidate = parameters.assess(width, plan).candidate
        assert candidate is not None
        torch.manual_seed(0)
        model = parameters.network.build(width, plan).eval()
        # The plan's arithmetic (plain total − replaced subtrees + modules) against a fresh trace
        # of the model the plan builds, and the parameters it holds.
        assert candidate.macs == analyze(model, (1, 16, 16)).cost().macs
        assert candidate.params == sum(p.numel() for p in model.parameters())


def test_the_batch_table_equals_the_scalar_cost_on_a_brought_network():
    parameters = parameters_of()
    widths, choices = parameters.sample(np.random.default_rng(1), 40)
    batch, _ = parameters.costed(widths, choices)
    for i, (w, row) in enumerate(zip(widths, choices, strict=True)):
        width, plan = parameters.configuration(int(w), [int(c) for c in row])
        found = parameters.assess(width, plan).candidate
        assert found is not None and (found.macs, found.params) == (batch.macs[i], batch.params[i])
    assert sum(parameters.configuration_counts().values()) > 40


def test_a_brought_mobilenet_v3_swaps_its_se_gates_as_the_built_in_study_does():
    """The built-in MobileNetV3 brought as a model: its SE gates are swap positions found by
    pattern, and every configuration costs what the built-in backbone's index plan costs."""
    from ulsam_nas import network_cost

    space = SearchSpace.model_validate(
        {
            "model": "ulsam_nas:create_network",
            "model_args": {"backbone": "mobilenet_v3_small", "stem": "small", "resolution": 16},
            "classes_arg": "num_classes",
            "channels_arg": "in_channels",
            "width_arg": "width_mult",
            "width_mults": [0.5, 0.75],
            "positions": [{"path": "features.*.block.se", "actions": ["swap", "remove"]}],
            "groups": [2, 4],
            "modules": ["ulsam", "eca"],
            "max_modules": 9,
        }
    )
    parameters = ParameterSpace(space, study_network(space, **SHAPE), Budget(mmacs=None))
    network = parameters.network.at(0.5)
    layers = [int(network.where(p.index).split(".")[1].removeprefix("layer")) for p in parameters.positions]
    assert layers == [1, 4, 5, 6, 7, 8, 9, 10, 11]
    widths, choices = parameters.sample(np.random.default_rng(2), 16)
    for w, row in zip(widths, choices, strict=True):
        width, plan = parameters.configuration(int(w), [int(c) for c in row])
        candidate = parameters.assess(width, plan).candidate
        assert candidate is not None
        layer_of = dict(zip((q.index for q in parameters.positions), layers, strict=True))
        by_index = [
            Placement(p.action, layer_of[p.index], p.module, **p.config) for p in network.resolve(plan)
        ]
        expected = network_cost("mobilenet_v3_small", width, by_index, 16, 10, 1, "small")
        assert (candidate.macs, candidate.params) == (expected.macs, expected.params)


def test_each_build_initialises_the_whole_network_under_the_current_seed():
    network = study_network(SearchSpace.model_validate(SPACE), **SHAPE)
    plan = parameters_of().configuration(1, [1, 0, 0, 0])[1]

    def first_weight(seed: int) -> torch.Tensor:
        torch.manual_seed(seed)
        return network.build(8, plan).stem[0].weight.detach().clone()

    assert torch.equal(first_weight(3), first_weight(3))
    assert not torch.equal(first_weight(3), first_weight(4))


def test_the_code_a_user_pastes_builds_the_candidate():
    parameters = parameters_of()
    width, plan = parameters.configuration(1, [2, 0, 0, 1])
    network = network_of_attrs(MODEL, parameters.network.attrs())
    assert network == parameters.network
    import ulsam_nas  # noqa: F401  (the code names it)

    model = eval(network.code(width, network.label(width, plan)))
    candidate = parameters.assess(width, plan).candidate
    assert candidate is not None and sum(p.numel() for p in model.parameters()) == candidate.params


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"backbone": "mobilenet_v1"}, "backbone or model, not both"),
        ({"model_args": {"day": __import__("datetime").date(2026, 1, 1)}}, "model_args: 'day' is a date"),
        ({"width_arg": None}, "2 widths but no width_arg"),
        ({"stem": "small"}, "stem applies to backbone"),
        ({"model_args": {"width": 8}}, "width_arg 'width' is also in model_args"),
        ({"positions": [{"index": 1, "path": "stem"}]}, "exactly one of index and path"),
    ],
)
def test_bad_brought_spaces_name_the_problem(changes, message):
    with pytest.raises(ValueError, match=message):
        SearchSpace.model_validate({**SPACE, **changes})


def test_a_backbone_position_given_as_a_path_is_refused():
    with pytest.raises(ValueError, match="a backbone's positions are layer indices"):
        SearchSpace.model_validate(
            {"backbone": "mobilenet_v1", "width_mults": [0.5], "positions": [{"path": "a"}]}
        )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"model_args": {"num_classes": 7, "in_channels": 1}},
            r"returns \(1, 7\) for one image; the data has 10",
        ),
        ({"model_args": {"num_classes": 10, "in_channels": 3}}, "fails on a 1×1×16×16 input"),
        ({"positions": [{"path": "layer9.*"}]}, "matches no position"),
        ({"positions": [{"path": "layer2.0", "actions": ["replace"]}]}, "replace is not allowed there"),
        ({"positions": [{"path": "layer1", "actions": ["replace"]}, {"path": "layer1.1"}]}, "nest"),
        ({"model": "examples/nothing.py:f"}, "is not a file"),
    ],
)
def test_a_brought_network_that_cannot_serve_the_space_is_refused_in_one_line(changes, message):
    with pytest.raises(InvalidInput, match=message) as error:
        parameters_of(**changes)
    assert "\n" not in str(error.value)


def test_a_model_whose_positions_change_with_the_width_is_refused(tmp_path):
    source = tmp_path / "deeper.py"
    source.write_text(
        "from torch import nn\n"
        "def net(depth, num_classes=10):\n"
        "    layers = [nn.Conv2d(1, 8, 3, padding=1)]\n"
        "    layers += [nn.Conv2d(8, 8, 3, padding=1) for _ in range(depth)]\n"
        "    head = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, num_classes)]\n"
        "    return nn.Sequential(*layers, *head)\n"
    )
    space = {
        "model": f"{source}:net",
        "width_arg": "depth",
        "width_mults": [1, 2],
        "positions": [{"index": 1}],
    }
    with pytest.raises(InvalidInput, match="other positions at width 2"):
        parameters_of(**{**space, "model_args": {}})


def test_a_sequential_child_named_like_a_number_keeps_the_numbers_meaning(tmp_path):
    # A study's plans name positions by number: "insert@2" is position 2 (here "0.1"), never
    # the child named "2" (position 4).
    source = tmp_path / "nested.py"
    source.write_text(
        "from torch import nn\n"
        "def net():\n"
        "    first = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8))\n"
        "    head = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)]\n"
        "    return nn.Sequential(first, nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), *head)\n"
    )
    network = BroughtNetwork(f"{source}:net", "{}", None, 16, 10, 1)
    analysis = network.at(1)
    assert analysis.where(2) == "0.1" and analysis.find("2") == [4]
    torch.manual_seed(0)
    built = network.build(1, "insert@2:ulsam:groups=4")
    assert type(built.get_submodule("0.1")).__name__ == "WithAttention"
    assert type(built.get_submodule("2")).__name__ == "Conv2d"
    assert network.label(1, "insert@2:ulsam:groups=4") == "insert@0.1:ulsam:groups=4"


def test_tracing_a_width_does_not_move_the_seeded_initialisation():
    network = study_network(SearchSpace.model_validate(SPACE), **SHAPE)
    _traced.cache_clear()
    torch.manual_seed(5)
    traced_inside = network.build(8, "").stem[0].weight.detach().clone()  # the trace runs first
    torch.manual_seed(5)
    assert torch.equal(traced_inside, network.build(8, "").stem[0].weight)


def test_a_position_number_past_the_end_is_refused_in_one_line():
    analysis = parameters_of().network.at(8)
    with pytest.raises(InvalidInput, match=r"position out of range; allowed: 0\.\.42"):
        analysis.resolve_placement(Placement("insert", 99))


def test_a_cost_table_refuses_slots_inside_one_that_may_be_replaced():
    analysis = parameters_of().network.at(8)
    outer, inner = analysis.find("layer1")[0], analysis.find("layer1.0")[0]
    slots = [
        [None, Placement("replace", outer, "ulsam", groups=2)],
        [None, Placement("insert", inner, "ulsam")],
    ]
    with pytest.raises(InvalidInput, match=r"slots at layer1\.0 and layer1 nest"):
        CostTable([analysis], slots)
    assert CostTable([analysis], slots[1:]).evaluate(np.array([0]), np.array([[1]])).valid.all()


def study_over(tmp_path: Path, width: int, paper_plan: str = "") -> Path:
    model = tmp_path / "net.py"
    model.write_text(
        "from torch import nn\n"
        f"def net(num_classes, in_channels, width={width}):\n"
        "    head = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes)]\n"
        "    body = [nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width)]\n"
        "    return nn.Sequential(*body, *head)\n"
    )
    (tmp_path / "space.yaml").write_text(
        "model: net.py:net\nclasses_arg: num_classes\nchannels_arg: in_channels\n"
        "width_mults: [1]\ngroups: [1, 2]\n"
        f"positions: [{{path: '0'}}]\npaper_plan: '{paper_plan}'\n"
    )
    study = tmp_path / "study.yaml"
    study.write_text(
        "name: b\nspace: space.yaml\nproxy: {data: synthetic, train_images: 64, val_images: 32, epochs: 1}\n"
        f"storage: {tmp_path / 's.journal'}\ntrials: 1\n"
    )
    return study


def test_a_brought_study_does_not_resume_over_a_changed_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    study = study_over(tmp_path, 8)
    config = load_study_config(study)
    create_or_load(prepare(config), open_storage(config.storage_url, 60, 180), baselines=False)
    study_over(tmp_path, 12)  # the file edited: its plain cost moves
    _traced.cache_clear()
    del sys.modules["ulsam_nas_user_" + re.sub(r"\W", "_", str(tmp_path / "net.py"))]  # imported once
    with pytest.raises(InvalidInput, match="exists with a different network"):
        create_or_load(prepare(config), open_storage(config.storage_url, 60, 180), baselines=False)


def test_a_misspelt_paper_plan_path_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidInput, match=r"paper_plan 'insert@nine:ulsam'.*'nine' is not a submodule path"):
        prepare(load_study_config(study_over(tmp_path, 8, "insert@nine:ulsam")))


def test_a_study_over_the_brought_example_runs_to_a_report_with_paths(tmp_path, monkeypatch, capsys):
    # The shipped study, on generated data (3 channels: the factory is handed them), end to end.
    monkeypatch.chdir(ROOT)
    storage = str(tmp_path / "s.journal")
    common = ["--storage", storage, "--quiet"]
    flags = ["--trials", "4", "--epochs", "1", "--data", "synthetic", "--no-schedule", "--seeds", "1"]
    assert main(["search", "studies/brought_network.yaml", *flags, *common]) == 0
    # best names positions and widths from what the study stored: no trace of the model.
    _traced.cache_clear()
    with monkeypatch.context() as patch:
        patch.setattr("ulsam_nas.search.network.analyze", lambda *a, **k: pytest.fail("traced again"))
        assert main(["best", "studies/brought_network.yaml", "--json", "--storage", storage]) == 0
    best = json.loads(capsys.readouterr().out)
    placed = [c for c in best["candidates"] if c["plan"]]
    assert placed and all("@layer" in c["where"] and "@layer" not in c["plan"] for c in placed)
    assert all(c["width_label"] == f"width={c['width_mult']:g}" for c in best["candidates"])
    assert "(width=" in best["recommendation"] and "α" not in best["recommendation"]
    assert set(best["position_names"].values()) == {f"layer{s}.{b}" for s in (1, 2, 3) for b in (0, 1)}
    out = tmp_path / "report"
    assert main(["report", "studies/brought_network.yaml", "--storage", storage, "--out", str(out)]) == 0
    assert "where" in (out / "trials.csv").read_text().splitlines()[0].split(",")
