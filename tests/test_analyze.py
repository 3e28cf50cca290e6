"""``analyze``: the exact closed-form cost of any traceable network, its positions and plans.

The networks below are written by hand in the styles users write (functional ReLU, ``+=``
residuals, grouped and depthwise convs, an SE gate with ``nn.AdaptiveAvgPool2d`` and
``nn.Hardsigmoid``, ``torch.mean`` heads, a channels-last MLP); their costs are held to the
built-in backbones' closed forms, to ``sum(p.numel())``, to the attention modules' closed forms
and, for random plans, to every supported counter's trace of the network the plan builds.
"""

from __future__ import annotations

import random
import re
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import ulsam_nas
from tests.strategies import module_case
from ulsam_nas import (
    InvalidInput,
    Placement,
    analyze,
    attention_cost,
    create_attention,
    create_network,
    network_cost,
)
from ulsam_nas.analysis import UNCOSTED, WithAttention
from ulsam_nas.attention import get_attention, list_attention
from ulsam_nas.backbones import BACKBONES
from ulsam_nas.cost.conventions import SUPPORTED
from ulsam_nas.cost.cost import Cost
from ulsam_nas.verify.plans import verify_plans


# -- networks written as users write them ---------------------------------------------------------
class Block(nn.Module):
    """A ResNet basic block: functional ReLU, a 1×1 downsample branch, ``out += identity``."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return F.relu(out)


class ResNetStyle(nn.Module):
    def __init__(self, width: int = 8, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(Block(width, width, 1), Block(width, width, 1))
        self.layer2 = nn.Sequential(Block(width, 2 * width, 2), Block(2 * width, 2 * width, 1))
        self.layer3 = nn.Sequential(Block(2 * width, 4 * width, 2), Block(4 * width, 4 * width, 1))
        self.layer4 = nn.Sequential(Block(4 * width, 8 * width, 2), Block(8 * width, 8 * width, 1))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class SEGate(nn.Module):
    """MobileNetV3's gate: pool, 1×1 conv, ReLU, 1×1 conv, hard sigmoid, ``*``."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc2(F.relu(self.fc1(self.pool(x)))))


class ChannelsLastMLP(nn.Module):
    """A Linear over channels on a permuted (non-contiguous) map, as ConvNeXt blocks do."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.fc = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.fc(x.permute(0, 2, 3, 1)))
        return x + y.permute(0, 3, 1, 2)


class GroupedNet(nn.Module):
    """Grouped, depthwise, dilated, strided and 3×1 convs with and without bias, Hardswish, an SE
    gate, a channels-last MLP, a functional max pool and a ``torch.mean`` head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.Hardswish())
        self.grouped = nn.Conv2d(16, 32, 3, 1, 2, dilation=2, groups=4, bias=False)
        self.depthwise = nn.Conv2d(32, 32, (3, 1), 1, (1, 0), groups=32)
        self.se = SEGate(32, 8)
        self.mlp = ChannelsLastMLP(32)
        self.pointwise = nn.Sequential(nn.Conv2d(32, 48, 1), nn.ReLU6(), nn.Dropout(0.2))
        self.head = nn.Linear(48, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.depthwise(F.relu(self.grouped(self.stem(x))))
        x = self.mlp(self.se(x))
        x = F.max_pool2d(self.pointwise(x), 2)
        return self.head(torch.mean(x, dim=(2, 3)))


def mobilenet_v2() -> nn.Module:
    return create_network("mobilenet_v2", width_mult=0.35, resolution=32, num_classes=10)


NETWORKS = {
    "resnet": (ResNetStyle, (3, 32, 32)),
    "grouped": (GroupedNet, (3, 32, 24)),
    "mobilenet_v2": (mobilenet_v2, (3, 32, 32)),
}


def numel(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def nonzero(cost: Cost) -> tuple:
    """A cost's values, zero entries dropped (closed forms may state a term as 0)."""

    def clean(d):
        return {k: v for k, v in d.items() if v}

    return (
        cost.params,
        cost.macs,
        clean(cost.params_by),
        clean(cost.macs_by),
        clean(cost.ops),
        cost.convention,
    )


def random_plan(rng: random.Random, analysis, max_modules: int = 3) -> str:
    """A valid random plan with paths: any registered module, insert or (where allowed) replace,
    never nested inside a replaced module."""
    while True:
        chosen = rng.sample(analysis.positions, rng.randint(1, min(max_modules, len(analysis.positions))))
        segments = []
        for position in chosen:
            action = "replace" if position.replace and rng.random() < 0.5 else "insert"
            module = "ulsam" if rng.random() < 0.3 else rng.choice(list_attention())
            config = get_attention(module).sample_config(rng, position.out_shape[0])
            options = "".join(f":{k}={v}" for k, v in config.items())
            segments.append(f"{action}@{position.path}:{module}{options}")
        plan = ",".join(segments)
        try:
            analysis.resolve(plan)
        except InvalidInput:
            continue  # nested, or options invalid at this shape: draw again
        return plan


# -- the plain network ----------------------------------------------------------------------------
@pytest.mark.parametrize("backbone", list(BACKBONES))
@pytest.mark.parametrize(("width", "resolution", "stem"), [(0.5, 64, "imagenet"), (0.35, 33, "small")])
def test_builtin_backbones_equal_network_cost(backbone, width, resolution, stem):
    kwargs = {"width_mult": width, "resolution": resolution, "num_classes": 10, "stem": stem}
    analysis = analyze(create_network(backbone, **kwargs), (3, resolution, resolution))
    for convention in ("exact", "paper"):
        assert nonzero(analysis.cost(convention=convention)) == nonzero(
            network_cost(backbone, convention=convention, **kwargs)
        )


@pytest.mark.parametrize("name", list(NETWORKS))
def test_params_equal_numel_and_nothing_is_left_uncosted(name):
    factory, size = NETWORKS[name]
    model = factory()
    analysis = analyze(model, size)
    cost = analysis.cost()
    assert cost.params == numel(model) and analysis.remainder == ()
    assert UNCOSTED not in cost.ops


def test_resnet_costs_by_hand():
    # Written out from the layers: conv1 3→8 3×3 at 32×32; the max pool halves to 16×16.
    analysis = analyze(ResNetStyle(), (3, 32, 32))
    rows = {(r.name, r.what): r.cost for r in analysis.breakdown()}
    assert rows[("conv1", "Conv2d")].macs == 8 * 3 * 9 * 32 * 32
    assert rows[("maxpool", "MaxPool2d")].ops == {"max_pool": 8 * 32 * 32}
    assert rows[("layer2.0.downsample.0", "Conv2d")].macs == 16 * 8 * 8 * 8
    assert rows[("layer2.0", "operator.add")].ops == {"add": 16 * 8 * 8}  # fx records `+=` as `+`
    assert rows[("avgpool", "AdaptiveAvgPool2d")].ops == {"global_avg_pool": 64 * 2 * 2}
    assert rows[("layer1.0", "F.relu")].ops == {"relu": 8 * 16 * 16}


def test_grouped_net_costs_by_hand():
    analysis = analyze(GroupedNet(), (3, 32, 24))
    rows = {(r.name, r.what): r.cost for r in analysis.breakdown()}
    assert rows[("grouped", "Conv2d")].macs == 32 * (16 // 4) * 9 * 16 * 12  # groups 4, dilation 2
    assert rows[("depthwise", "Conv2d")].macs == 32 * 1 * 3 * 16 * 12
    assert rows[("depthwise", "Conv2d")].ops == {"bias_add": 32 * 16 * 12}
    assert rows[("se.gate", "Hardsigmoid")].ops == {"hardsigmoid": 32}
    assert rows[("stem.2", "Hardswish")].ops == {"hardswish": 16 * 16 * 12}
    # The Linear on a permuted map: torch adds its bias separately (not counted as bias_add).
    assert rows[("mlp.fc", "Linear")].ops == {"add": 16 * 12 * 32}
    assert rows[("", "torch.mean")].ops == {"spatial_mean": 48 * 8 * 6}
    assert rows[("", "F.max_pool2d")].ops == {"max_pool": 48 * 16 * 12}


# -- the attention modules, traced through -----------------------------------------------------
@pytest.mark.parametrize("name", list_attention())
@settings(max_examples=8)
@given(data=st.data())
def test_traced_attention_modules_equal_their_closed_forms(name, data):
    m, h, w, config = data.draw(module_case(name, max_side=24))
    model = nn.Sequential(create_attention(name, m, **config))
    got = analyze(model, (m, h, w)).cost()
    assert nonzero(got) == nonzero(attention_cost(name, m, h, w, **config))


def test_mobilenet_with_every_module_equals_network_cost():
    plan = ",".join(f"insert@{i + 1}:{name}" for i, name in enumerate(list_attention()))
    kwargs = {"width_mult": 0.5, "resolution": 32, "num_classes": 10}
    analysis = analyze(create_network("mobilenet_v2", plan=plan, **kwargs), (3, 32, 32))
    assert nonzero(analysis.cost()) == nonzero(network_cost("mobilenet_v2", plan=plan, **kwargs))


def test_path_plans_on_a_backbone_equal_network_cost_plans():
    kwargs = {"width_mult": 0.5, "resolution": 64, "num_classes": 10}
    analysis = analyze(create_network("mobilenet_v1", **kwargs), (3, 64, 64))
    by_path = "replace@features.layer9:ulsam:groups=4,insert@features.layer12:se:reduction=8"
    by_index = "replace@9:ulsam:groups=4,insert@12:se:reduction=8"
    for convention in ("exact", "paper"):
        assert nonzero(analysis.cost(by_path, convention)) == nonzero(
            network_cost("mobilenet_v1", plan=by_index, convention=convention, **kwargs)
        )


@pytest.mark.parametrize(
    ("by_index", "by_path"),
    [
        ("swap@4:eca", "swap@features.layer4.block.se:eca"),
        ("swap@*:none", "swap@*:none"),
        (
            "swap@*:ulsam,replace@3:se:reduction=4",
            "swap@features.*.block.se:ulsam,replace@features.layer3:se:reduction=4",
        ),
        (
            "swap@1:none,swap@5:cbam:reduction=4,insert@2:simam",
            "swap@features.layer1.block.se:none,swap@features.layer5.block.se:cbam:reduction=4,"
            "insert@features.layer2:simam",
        ),
    ],
)
def test_swap_in_a_traced_mobilenet_v3_is_the_built_in_swap(by_index, by_path):
    """A traced model's SE gates are swap positions: swapping them by path costs and builds
    exactly what the built-in backbone's swap does, in both conventions."""
    kwargs = {"width_mult": 0.5, "resolution": 32, "num_classes": 10, "in_channels": 1, "stem": "small"}
    analysis = analyze(create_network("mobilenet_v3_small", **kwargs), (1, 32, 32))
    assert analysis.allowed("swap") == [p.index for p in analysis.positions if p.path.endswith("block.se")]
    for convention in ("exact", "paper"):
        assert nonzero(analysis.cost(by_path, convention)) == nonzero(
            network_cost("mobilenet_v3_small", plan=by_index, convention=convention, **kwargs)
        )
    built = analysis.build(by_path)
    assert nonzero(analyze(built, (1, 32, 32)).total()) == nonzero(analysis.cost(by_path))
    rows = analysis.breakdown(by_path)
    assert sum(r.cost.macs for r in rows if not r.replaced) == analysis.cost(by_path).macs


def test_a_traced_network_without_gates_refuses_swap_naming_where_it_is_allowed():
    analysis = analyze(create_network("mobilenet_v1", width_mult=0.25, resolution=32), (3, 32, 32))
    assert analysis.allowed("swap") == []
    with pytest.raises(InvalidInput, match="matches no position where swap is allowed; allowed: none"):
        analysis.cost("swap@features.*:eca")


# -- positions ------------------------------------------------------------------------------------
def test_resnet_positions():
    analysis = analyze(ResNetStyle(), (3, 32, 32))
    paths = [p.path for p in analysis.positions]
    assert "layer3.1" in paths and "layer2.0.downsample" in paths
    assert paths.index("layer1") < paths.index("layer1.0") < paths.index("layer2") < paths.index("layer4.1")
    assert [p.index for p in analysis.positions] == list(range(len(paths)))
    assert "fc" not in paths and "avgpool" in paths  # a 1×C output is none, a 1×1 map is one
    block = analysis.position("layer3.1")
    assert (block.in_shape, block.out_shape, block.replace) == ((32, 4, 4), (32, 4, 4), True)
    down = analysis.position("layer3.0")
    assert not down.replace and "16×8×8 and its output 32×4×4" in down.why_not_replace


def test_a_module_called_twice_is_no_position():
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(self.conv(x))

    analysis = analyze(Twice(), (4, 8, 8))
    assert analysis.positions == ()
    assert analysis.cost().macs == 2 * 4 * 4 * 9 * 64 and analysis.cost().params == 4 * 4 * 9 + 4
    with pytest.raises(InvalidInput, match=r"'conv' is not a position \(it is called 2 times\)"):
        analysis.cost("insert@conv:se")


class SharedConv(nn.Module):
    """A conv registered twice (``block.1`` first, then ``head``) and called from both places."""

    def __init__(self) -> None:
        super().__init__()
        conv = nn.Conv2d(4, 4, 3, padding=1)
        self.block = nn.Sequential(nn.BatchNorm2d(4), conv)
        self.head = conv
        self.tail = nn.Conv2d(4, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.head(self.block(x)))


def test_replacing_a_module_keeps_weights_it_shares_with_the_rest():
    model = SharedConv()
    analysis = analyze(model, (4, 8, 8))
    assert "head" not in [p.path for p in analysis.positions]  # called twice
    assert analysis.cost().params == numel(model) == 2 * (4 * 4 * 9 + 4) - (4 * 4 * 9 + 4) + 8 + 4 * 4 + 4
    plan = "replace@block:simam"
    built = analysis.build(plan)
    cost = analysis.cost(plan)
    assert cost.params == numel(built) == numel(model) - 8  # only the BatchNorm goes
    assert cost.macs == analysis.cost().macs - 4 * 4 * 9 * 64  # one call of the conv goes
    assert nonzero(analyze(built, (4, 8, 8)).cost()) == nonzero(cost)


# -- plans ----------------------------------------------------------------------------------------
@settings(max_examples=30)
@given(seed=st.integers(0, 2**32 - 1), name=st.sampled_from(list(NETWORKS)))
def test_built_networks_cost_what_the_plan_says(seed, name):
    size = NETWORKS[name][1]
    analysis = analyzed(name)
    plan = random_plan(random.Random(seed), analysis)
    cost = analysis.cost(plan)
    built = analysis.build(plan)
    assert cost.params == numel(built)
    assert nonzero(analyze(built, size).cost()) == nonzero(cost)
    assert nonzero(analysis.cost(analysis.plan_text(plan))) == nonzero(cost)  # printed plans parse back


_ANALYSES: dict[str, object] = {}


def analyzed(name: str):
    if name not in _ANALYSES:
        factory, size = NETWORKS[name]
        _ANALYSES[name] = analyze(factory(), size)
    return _ANALYSES[name]


def test_build_inserts_wraps_and_replaces_leaving_the_model_untouched():
    model = ResNetStyle()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    analysis = analyze(model, (3, 32, 32))
    built = analysis.build("insert@layer3.1:ulsam:groups=4,replace@layer4.1:eca,insert@layer3:se:reduction=4")
    assert isinstance(built.layer3[1], WithAttention) and isinstance(built.layer3, WithAttention)
    assert type(built.layer4[1]).__name__ == "ECA"
    keys = built.state_dict().keys()
    assert (
        "layer3.module.1.module.conv1.weight" in keys and "layer3.module.1.attention.depthwise.weight" in keys
    )
    assert built.layer3.module[1].conv1 is built.layer3[1].conv1  # the wrapper forwards attributes
    assert model.state_dict().keys() == before.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    assert built(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_analyze_is_exported():
    assert ulsam_nas.analyze is analyze and "analyze" in ulsam_nas.__all__


def test_plan_text_uses_paths_and_integers_are_position_numbers():
    analysis = analyze(ResNetStyle(), (3, 32, 32))
    number = analysis.position("layer3.1").index
    assert analysis.plan_text(f"insert@{number}:ulsam:groups=8") == "insert@layer3.1:ulsam:groups=8"
    assert analysis.plan_text("replace@layer4.1:eca,insert@layer1:se:reduction=2") == (
        "insert@layer1:se:reduction=2,replace@layer4.1:eca:kernel_size=3"
    )
    assert analysis.cost("") == analysis.cost() == analysis.cost(None)


@pytest.mark.parametrize(
    ("plan", "needle"),
    [
        ("insert@layer9:ulsam", "'layer9' is not a submodule path of this model; allowed: conv1, bn1"),
        ("insert@fc:se", "'fc' is not a position (its output is not one 1×C×H×W tensor (1×10))"),
        (
            "replace@layer2.0:ulsam",
            "replace@layer2.0:ulsam is not allowed: its input is 8×16×16 and its output 16×8×8; "
            "replace is allowed at bn1, layer1,",
        ),
        ("insert@layer1:ulsam:groups=3", "groups=3 does not divide channels=8; allowed: 1, 2, 4, 8"),
        ("insert@layer1:ulsam:size=3", "unknown option 'size' for ulsam"),
        ("insert@layer1:nope", "unknown attention module 'nope'"),
        (
            "replace@layer3.1:se:reduction=4,insert@layer3.1.conv1:eca",
            "insert@layer3.1.conv1:eca:kernel_size=3 lies inside layer3.1, which "
            "replace@layer3.1:se:reduction=4 replaces; allowed: placements outside a replaced module",
        ),
        ("insert@layer1:se:reduction=4,replace@layer1:eca", "are both at layer1; allowed: one placement"),
        (
            "insert@layer1:se",
            "insert@layer1:se (at 8×16×16): reduction=16 (the default) is larger than channels=8",
        ),
        ("insert@999:se", "position 999 is out of range"),
        (
            "swap@layer1:se:reduction=4",
            "swap@layer1:se:reduction=4 is not allowed: layer1 is not an attention gate (a module whose "
            "output is its input times a gate it computes); swap is allowed at none",
        ),
        ("replace@layer1:none", "module 'none' is allowed only as swap@INDEX:none (without options)"),
        ("layer1:se", "placement 'layer1:se' is malformed; expected ACTION@PATH"),
        ("insert@layer1:se:bogus", "placement 'insert@layer1:se:bogus': 'bogus' is neither"),
    ],
)
def test_bad_plans_name_the_value_and_what_is_allowed(plan, needle):
    analysis = analyzed("resnet")
    with pytest.raises(InvalidInput) as error:
        analysis.cost(plan)
    assert needle in str(error.value) and "\n" not in str(error.value)


def test_replace_is_refused_where_a_value_escapes_the_module():
    class Leaky(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = nn.Conv2d(4, 4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.block = Leaky()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.block(x) + self.block.inner.weight.sum()

    analysis = analyze(Net(), (4, 6, 6), strict=False)
    assert analysis.position("block").replace  # the parameter is read outside, not a value inside


def test_cost_does_not_trace_again(monkeypatch):
    analysis = analyze(ResNetStyle(), (3, 32, 32))

    def refuse(*args, **kwargs):
        raise AssertionError("traced again")

    monkeypatch.setattr(torch.fx.Tracer, "trace", refuse)
    monkeypatch.setattr(torch.fx.Interpreter, "run", refuse)
    cost = analysis.cost("insert@layer3.1:ulsam:groups=4,replace@layer4.1:eca", "paper")
    assert cost.macs > 0 and analysis.breakdown("insert@layer3.1:ulsam")


@pytest.mark.parametrize("convention", ["exact", "paper"])
def test_breakdown_rows_sum_to_the_cost(convention):
    analysis = analyze(GroupedNet(), (3, 32, 24))
    plan = "replace@se:ulsam:groups=8,insert@stem:cbam:reduction=4"
    rows = analysis.breakdown(plan, convention)
    kept = [r.cost for r in rows if not r.replaced]
    total = kept[0]
    for cost in kept[1:]:
        total = total + cost
    assert nonzero(total) == nonzero(analysis.cost(plan, convention))
    names = [r.name for r in rows]
    assert names.index("stem.attention") == names.index("stem.2") + 1  # right after the stem
    inserted = [i for i, r in enumerate(rows) if r.inserted]
    assert [rows[i].what for i in inserted] == ["insert@stem:cbam:reduction=4", "replace@se:ulsam:groups=8"]
    assert inserted[1] == max(i for i, r in enumerate(rows) if r.replaced) + 1  # after what it replaces
    assert {r.name for r in rows if r.replaced} == {"se.pool", "se.fc1", "se.fc2", "se.gate", "se"}


def test_paper_convention_keeps_conv_and_linear_weights_only():
    analysis = analyze(GroupedNet(), (3, 32, 24))
    paper, exact = analysis.cost(convention="paper"), analysis.cost()
    assert paper.params == exact.params_by["weight"] + exact.params_by["bias"]
    assert paper.macs == exact.macs and paper.ops == {}
    with_module = analysis.cost("insert@se:ulsam:groups=4", "paper")
    assert with_module.params == paper.params + 2 * 32  # ULSAM at its paper cost: 2m


# -- what has no closed form ------------------------------------------------------------------------
class Odd(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.act = nn.ELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.erf(self.act(self.conv(x)))


def test_strict_names_every_operator_without_a_closed_form():
    with pytest.raises(InvalidInput) as error:
        analyze(Odd(), (3, 8, 8))
    assert str(error.value).splitlines() == [
        "no closed form for 2 operator(s) of 2 type(s):",
        "  ELU ×1, first at act (output 8×8×8)",
        "  torch.erf ×1, first at (model) (output 8×8×8)",
        "  strict=False costs the rest and lists these as a remainder, left out of the totals and marked so",
    ]


class Many(nn.Module):
    """49 ELUs and six other operator types without a closed form."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(*[nn.ELU() for _ in range(49)])
        self.act = nn.Softplus()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.features(x))
        return torch.atan(x) + torch.sinh(x) + torch.cosh(x) + torch.lgamma(x) + torch.erf(x)


def test_a_long_remainder_is_one_line_per_type_and_at_most_a_few():
    """The refusal once listed every occurrence in one line (4,815 characters for one zoo model)."""
    with pytest.raises(InvalidInput) as error:
        analyze(Many(), (3, 8, 8))
    lines = str(error.value).splitlines()
    assert lines[0] == "no closed form for 55 operator(s) of 7 type(s):"
    assert lines[1] == "  ELU ×49, first at features.0 (output 3×8×8)"
    assert lines[-2].startswith("  … and 3 more types (3): ")
    assert len(lines) == 7 and max(map(len, lines)) < 120


def test_the_remainder_is_listed_and_never_counted_as_zero():
    analysis = analyze(Odd(), (3, 8, 8), strict=False)
    assert [(u.op, u.path, u.out_shape) for u in analysis.remainder] == [
        ("ELU", "act", (8, 8, 8)),
        ("torch.erf", "", (8, 8, 8)),
    ]
    assert analysis.cost().ops[UNCOSTED] == 2 and analysis.cost(convention="paper").ops[UNCOSTED] == 2
    # Replacing the module that holds one removes it from the count.
    assert analysis.cost("replace@act:simam").ops[UNCOSTED] == 1


def test_untraceable_modules_are_named():
    class Branchy(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x if x.sum() > 0 else -x

    model = nn.Sequential(nn.Conv2d(3, 3, 1), nn.Sequential(nn.ReLU(), Branchy()))
    refusal = r"analyze cannot trace module '1.1' \(Branchy\): its control flow depends on tensor values"
    with pytest.raises(InvalidInput, match=refusal):
        analyze(model, (3, 8, 8))


def test_simam_which_fx_cannot_trace_is_costed_by_its_closed_form():
    model = nn.Sequential(nn.Conv2d(3, 6, 1), create_attention("simam", 6))
    cost = analyze(model, (3, 5, 7)).cost()
    conv = analyze(nn.Sequential(nn.Conv2d(3, 6, 1)), (3, 5, 7)).cost()
    assert nonzero(cost) == nonzero(conv + attention_cost("simam", 6, 5, 7))


@pytest.mark.parametrize(
    ("model", "size", "needle"),
    [
        ("not a model", (3, 8, 8), "model must be a torch.nn.Module"),
        (nn.Conv2d(3, 3, 1), (3, 8), "input_size=(3, 8) is invalid"),
        (nn.Conv2d(3, 3, 1), (3, 0, 8), "height=0 is invalid"),
        (nn.Conv2d(4, 3, 1), (3, 8, 8), "the model fails on a 3×8×8 input"),
    ],
)
def test_bad_arguments(model, size, needle):
    with pytest.raises(InvalidInput) as error:
        analyze(model, size)
    assert needle in str(error.value)


# -- against the counters ---------------------------------------------------------------------------
@pytest.mark.tracer
def test_random_plans_equal_every_supported_counter():
    rng = random.Random(2027)
    counts = {"resnet": 16, "grouped": 14, "mobilenet_v2": 14}
    plans = {name: [""] + [random_plan(rng, analyzed(name)) for _ in range(n)] for name, n in counts.items()}
    for name, drawn in plans.items():
        factory, size = NETWORKS[name]
        rows = verify_plans(factory, size, drawn)
        assert [r for r in rows if not r["match"]] == []
        counted = [r for r in rows if r["counter"] in SUPPORTED]
        assert len(counted) == len(SUPPORTED) * len(drawn) and len(SUPPORTED) == 3
        assert len([r for r in rows if r["counter"] == "fvcore params"]) == len(drawn)
    assert sum(map(len, plans.values())) == 47


# -- the patterns of timm's and torchvision's networks ---------------------------------------------
NEW_UNITS = ("silu", "gelu", "tanh", "avg_pool", "upsample_nearest", "upsample_bilinear", "group_norm")


def test_the_zoo_replica_is_costed_whole():
    """Functional BatchNorm, LayerNorm and linear inside module subclasses, SiLU, GELU, tanh,
    average pools, resizes, GroupNorm and both kinds of stochastic depth: no remainder, every
    parameter counted, every new unit met."""
    from tests.zoo_replicas import zoo_replica

    model = zoo_replica()
    analysis = analyze(model, (3, 16, 16))
    cost = analysis.cost()
    assert analysis.remainder == () and cost.complete
    assert cost.params == sum(p.numel() for p in model.parameters())
    assert all(cost.ops.get(unit) for unit in (*NEW_UNITS, "batch_norm", "layer_norm"))
    assert cost.macs_by["linear"] > 0
    assert cost.macs_by["attention"] == 2 * 16 * 16 * (12 + 12)  # 2 heads, 4×4 = 16 tokens of width 12


@pytest.mark.tracer
def test_the_zoo_replica_equals_every_supported_counter_under_random_plans():
    from tests.zoo_replicas import zoo_replica

    analysis = analyze(zoo_replica(), (3, 16, 16))
    rng = random.Random(2026)
    plans = ["", *(random_plan(rng, analysis) for _ in range(10))]
    rows = verify_plans(zoo_replica, (3, 16, 16), plans)
    assert [r for r in rows if not r["match"]] == []
    assert len([r for r in rows if r["counter"] in SUPPORTED]) == 3 * len(plans)


@pytest.mark.tracer
def test_a_mobilevit_block_with_a_branch_on_its_size_traces_and_equals_every_counter():
    """A 16×16 input gives an 8×8 map, cut into 2×2 patches as it is; a 13×13 input gives 7×7,
    resized to 8×8 and back: the resizes are in the cost exactly when the branch runs."""
    from tests.zoo_replicas import mobilevit_replica

    small, odd = analyze(mobilevit_replica(), (3, 16, 16)), analyze(mobilevit_replica(), (3, 13, 13))
    assert not small.cost().ops.get("upsample_bilinear") and not small.cost().ops.get("upsample_nearest")
    assert (odd.cost().ops["upsample_bilinear"], odd.cost().ops["upsample_nearest"]) == (
        12 * 8 * 8,
        12 * 7 * 7,
    )
    assert odd.cost().complete and odd.cost().macs_by["attention"] > 0
    rng = random.Random(2028)
    plans = ["", *(random_plan(rng, odd) for _ in range(6))]
    rows = verify_plans(mobilevit_replica, (3, 13, 13), plans)
    assert [r for r in rows if not r["match"]] == []
    assert len([r for r in rows if r["counter"] in SUPPORTED]) == 3 * len(plans)


def test_control_flow_on_values_is_refused_with_the_module_and_reason():
    from tests.zoo_replicas import value_dependent

    with pytest.raises(InvalidInput) as error:
        analyze(value_dependent(), (3, 15, 15))
    message = str(error.value)
    assert "analyze cannot trace module '1' (ValueDependent)" in message
    assert "control flow depends on tensor values" in message
    assert len(message.splitlines()) <= 3


# -- path patterns ------------------------------------------------------------------------------
def test_a_path_pattern_places_a_module_at_every_matching_position():
    analysis = analyzed("resnet")
    blocks = [p.path for p in analysis.positions if re.fullmatch(r"layer\d\.\d", p.path)]
    explicit = ",".join(f"insert@{path}:eca" for path in blocks)
    assert len(blocks) >= 4
    assert analysis.plan_text("insert@layer*.*:eca") == analysis.plan_text(explicit)
    assert analysis.cost("insert@layer*.*:eca") == analysis.cost(explicit)
    # a placement that names a path overrides the pattern there, in either order
    mixed = f"insert@{blocks[1]}:ulsam:groups=2,insert@layer*.*:eca"
    assert analysis.plan_text(mixed) == analysis.plan_text(
        explicit.replace(f"insert@{blocks[1]}:eca", f"insert@{blocks[1]}:ulsam:groups=2")
    )
    # ** crosses path components, * does not
    deep = [analysis.positions[p.index].path for p in analysis.resolve("insert@layer1.**:eca")]
    assert any(path.count(".") >= 2 for path in deep) and all(path.startswith("layer1.") for path in deep)


def test_replace_at_every_position_takes_only_the_outermost():
    analysis = analyzed("resnet")
    replaced = [analysis.positions[p.index].path for p in analysis.resolve("replace@*:simam")]
    assert replaced and not any(a.startswith(b + ".") for a in replaced for b in replaced)
    assert all(analysis.positions[p.index].replace for p in analysis.resolve("replace@*:simam"))


@pytest.mark.parametrize(
    ("plan", "needle"),
    [
        ("insert@layer9.*:eca", "the pattern 'layer9.*' matches no position where a plan can name"),
        ("replace@fc*:eca", "the pattern 'fc*' matches no position where replace is allowed"),
    ],
)
def test_a_pattern_that_matches_nothing_is_refused(plan, needle):
    with pytest.raises(InvalidInput, match=re.escape(needle)):
        analyzed("resnet").cost(plan)


def test_an_every_placement_object_is_refused_in_path_plans():
    with pytest.raises(InvalidInput, match="write @\\* or a path pattern"):
        analyzed("resnet").cost([Placement("insert", "*", "eca")])


def test_a_learnt_constant_scale_is_no_attention_gate():
    class LayerScale(nn.Module):  # output = input × a learnt N×C×1×1 constant: not computed from it
        def __init__(self) -> None:
            super().__init__()
            self.gamma = nn.Parameter(torch.ones(1, 8, 1, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.gamma

    model = nn.Sequential(OrderedDict(conv=nn.Conv2d(3, 8, 3, padding=1), scale=LayerScale()))
    analysis = analyze(model, (3, 8, 8))
    assert analysis.position("scale").replace and not analysis.position("scale").gate
    assert analysis.allowed("swap") == []
