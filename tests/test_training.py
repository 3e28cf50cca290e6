"""The cost of a training step: the exact closed form against torch's FlopCounterMode counting a
real forward and ``.backward()`` in train mode, for every module over random shapes and every
built-in backbone with random plans."""

from __future__ import annotations

import json
import random

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from tests.strategies import module_case
from ulsam_nas import analyze, attention_cost, register_rule
from ulsam_nas.attention import list_attention
from ulsam_nas.attention.registry import attention_formula, create_attention
from ulsam_nas.backbones import create_network, network_cost
from ulsam_nas.backbones.network import BACKBONES, BackboneShape
from ulsam_nas.cli import main
from ulsam_nas.cost.cost import GROUPED_WEIGHT_EXTRA, Terms
from ulsam_nas.cost.training import torch_training_flops, training_report
from ulsam_nas.verify.cases import build_model, network_cases

BATCH = 2  # BatchNorm in train mode needs two values per channel; every count is linear in it


def counted_training_step(model: nn.Module, x: torch.Tensor) -> int:
    """FlopCounterMode's FLOPs for one image of a training step (forward and backward)."""
    model.train()
    with FlopCounterMode(display=False) as counter:
        model(x).float().sum().backward()
    total = counter.get_total_flops()
    assert total % BATCH == 0
    return total // BATCH


@pytest.mark.parametrize("module", list_attention())
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_each_module_training_step_equals_torch_counter_over_random_shapes(module, data):
    m, h, w, config = data.draw(module_case(module, max_side=20))
    cost = attention_cost(module, m, h, w, **config)
    # inside a network a module's input needs its gradient (it comes from trained layers)
    x = torch.randn(BATCH, m, h, w, generator=torch.Generator().manual_seed(0), requires_grad=True)
    counted = counted_training_step(create_attention(module, m, **config), x)
    assert counted == torch_training_flops(cost), ((m, h, w, config), cost.train_by)


def test_backbones_with_random_plans_training_step_equals_torch_counter():
    cases = network_cases(24, seed=29)
    assert len({c.backbone for c in cases}) == len(BACKBONES) and sum(bool(c.plan) for c in cases) > 15
    generator = torch.Generator().manual_seed(0)
    for case in cases:
        cost = network_cost(**case.arguments())
        x = torch.randn(BATCH, case.in_channels, case.resolution, case.resolution, generator=generator)
        assert counted_training_step(build_model(case), x) == torch_training_flops(cost), case


def test_the_stem_reads_the_image_so_it_has_no_input_gradient():
    # ResNet-18 has no grouped convolution: every product is forward + input and weight
    # gradients, except the stem, whose input is the image.
    cost = network_cost("resnet18", 0.5, resolution=64, num_classes=10)
    stem = BackboneShape("resnet18", 0.5, 64, 10).table().layers[0].exact
    assert cost.train_macs == 3 * cost.macs - stem.macs_by["conv"]
    assert cost.train_by is not None and GROUPED_WEIGHT_EXTRA not in cost.train_by


def test_torch_counts_a_grouped_weight_gradient_as_dense_and_the_exact_count_does_not():
    m, h, w, g = 32, 8, 8, 4
    cost = attention_cost("ulsam", m, h, w, groups=g)
    depthwise, pointwise = m * h * w, m * h * w  # 1×1 depthwise; g 1×1 convs of m/g inputs
    assert cost.macs_by["conv"] == depthwise + pointwise
    assert cost.train_macs == 3 * cost.macs
    assert cost.train_by is not None
    assert cost.train_by[GROUPED_WEIGHT_EXTRA] == depthwise * (m - 1) + pointwise * (g - 1)
    report = training_report(cost)
    assert (
        report is not None
        and report["torch_flops"] == 2 * (3 * cost.macs) + 2 * report["torch_grouped_extra_macs"]
    )


def test_training_formula_evaluates_to_the_training_count():
    for module in list_attention():
        formula = attention_formula(module, 48, 7, 5)
        cost = attention_cost(module, 48, 7, 5)
        assert formula.train is not None and int(formula.train) == cost.train_macs, module


def test_no_training_count_where_there_is_no_closed_form_of_the_backward():
    assert attention_cost("ulsam", 32, 8, 8, "paper", groups=4).train_macs is None
    assert network_cost("mobilenet_v1", 0.5, resolution=32, convention="paper").train_macs is None
    assert attention_formula("ulsam", 32, 8, 8, "paper", groups=4).train is None


def test_cost_train_flag_prints_the_training_step(capsys):
    assert (
        main(
            ["cost", "ulsam", "--channels", "32", "--height", "8", "--width", "8", "--groups", "4", "--train"]
        )
        == 0
    )
    text = capsys.readouterr().out
    cost = attention_cost("ulsam", 32, 8, 8, groups=4)
    assert f"training step MACs {cost.train_macs:,}" in text
    assert f"counts {torch_training_flops(cost):,} FLOPs" in text
    assert (
        main(["cost", "--backbone", "mobilenet_v1", "--width-mult", "0.25", "--resolution", "32", "--train"])
        == 0
    )
    text = capsys.readouterr().out
    network = network_cost("mobilenet_v1", 0.25, resolution=32)
    assert f"training step MACs {network.train_macs:,}" in text
    assert "counted as dense" in text
    assert main(["cost", "ulsam", "--train", "--convention", "paper"]) == 2
    assert "--train" in capsys.readouterr().err


def test_table_train_columns_are_each_modules_training_step(capsys):
    assert (
        main(
            [
                "table",
                "--modules",
                "all",
                "--convention",
                "exact",
                "--train",
                "--channels",
                "64",
                "--height",
                "16",
                "--width",
                "16",
                "--json",
            ]
        )
        == 0
    )
    rows = {r["module"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert set(rows) == set(list_attention())
    for module, row in rows.items():
        cost = attention_cost(module, 64, 16, 16)
        assert (row["train_macs_exact"], row["train_torch_flops"]) == (
            cost.train_macs,
            torch_training_flops(cost),
        )
    assert rows["ulsam"]["train_torch_flops"] > 10 * rows["ulsam"]["train_macs_exact"]  # depthwise as dense
    assert main(["table", "--train", "--channels", "64", "--height", "16", "--width", "16"]) == 0
    assert "Train step (MAC)" in capsys.readouterr().out


# -- traced networks ------------------------------------------------------------------------------
def _traced_cases() -> list[tuple[str, object, tuple[int, int, int]]]:
    from examples.mynets import resnet_like
    from tests.zoo_replicas import mobilevit_replica, zoo_replica

    return [
        ("resnet_like", resnet_like, (3, 32, 32)),
        ("zoo_replica", zoo_replica, (3, 16, 16)),
        ("mobilevit_replica", mobilevit_replica, (3, 13, 13)),
    ]


@pytest.mark.parametrize(("name", "factory", "size"), _traced_cases())
def test_traced_networks_training_step_equals_torch_counter_under_random_plans(name, factory, size):
    from tests.test_analyze import random_plan

    torch.manual_seed(0)
    analysis = analyze(factory(), size)
    rng = random.Random(29)
    for plan in ["", *(random_plan(rng, analysis) for _ in range(5))]:
        cost = analysis.cost(plan)
        x = torch.randn(BATCH, *size, generator=torch.Generator().manual_seed(1))
        assert counted_training_step(analysis.build(plan), x) == torch_training_flops(cost), (name, plan)


def test_a_traced_builtin_backbone_has_the_closed_forms_training_step():
    for backbone in BACKBONES:
        shape = {"width_mult": 0.5, "resolution": 40, "num_classes": 10}
        traced = analyze(create_network(backbone, **shape), (3, 40, 40)).cost()
        assert traced.train_by is not None
        assert traced.train_macs == network_cost(backbone, **shape).train_macs, backbone


def test_frozen_parameters_need_no_weight_gradient_and_what_follows_them_no_input_gradient():
    from examples.mynets import resnet_like

    model = resnet_like()
    frozen = [p for n, p in model.named_parameters() if n.startswith(("stem", "layer1"))]
    for p in frozen:
        p.requires_grad_(False)
    analysis = analyze(model, (3, 32, 32))
    x = torch.randn(BATCH, 3, 32, 32)
    for plan in ["", "insert@layer3.1:ulsam:groups=4", "replace@layer2.1:eca"]:
        cost = analysis.cost(plan)
        assert counted_training_step(analysis.build(plan), x) == torch_training_flops(cost), plan
    plain = analyze(resnet_like(), (3, 32, 32)).cost()
    assert cost.train_macs is not None and plain.train_macs is not None
    assert analysis.cost().train_macs < plain.train_macs
    # a module trained after the frozen layers would make later values need gradients: refused
    inside = next(p for p in analysis.positions if p.path == "layer1.0")
    assert not inside.grad_out
    assert analysis.cost("insert@layer1.0:ulsam").train_macs is None


def test_a_rule_without_backward_terms_leaves_the_training_step_unknown():
    class Scale(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.special.erf(self.conv(x))

    def erf_as_matmul(call):  # a user's rule: MACs but no backward terms
        return Terms(macs={"matmul": call.out.numel})

    previous = register_rule(torch.special.erf, erf_as_matmul)
    try:
        cost = analyze(Scale(), (3, 8, 8)).cost()
    finally:
        if previous is not None:
            register_rule(torch.special.erf, previous)
    assert cost.macs_by["matmul"] == 8 * 8 * 8 and cost.train_macs is None


def test_a_module_costed_whole_keeps_its_backward_only_where_it_is_trained_on_a_gradient():
    class Mixer(nn.Module):  # a leaf with a rule of its own: a weight times the map
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.randn(8, 8))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.einsum("oc,bchw->bohw", self.weight, x)

    def mixer_rule(call):
        _, c, h, w = call.input.shape
        return Terms(macs={"matmul": c * c * h * w}, train={"matmul_grad": 2 * c * c * h * w})

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, padding=1)
            self.mix = Mixer()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.mix(self.stem(x))

    previous = register_rule(Mixer, mixer_rule)
    try:
        net = Net()
        trained = analyze(net, (3, 8, 8)).cost()
        net.stem.requires_grad_(False)  # the mixer's input no longer needs a gradient
        frozen_before = analyze(net, (3, 8, 8)).cost()
    finally:
        if previous is not None:
            register_rule(Mixer, previous)
    mixer = 8 * 8 * 8 * 8
    assert trained.train_by is not None and trained.train_by["matmul_grad"] == 2 * mixer
    assert (
        trained.train_by["conv_grad_weight"] == 3 * 9 * 8 * 64 and "conv_grad_input" not in trained.train_by
    )
    assert frozen_before.train_macs is None  # its closed form assumes a gradient flows in
