"""MobileNetV3-Large/Small and ResNet-18: the published counts, swapping the SE, ``@*``."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from ulsam_nas import Placement, attention_cost, create_network, network_cost
from ulsam_nas.backbones import backbone_table, network_breakdown, resolve_plan
from ulsam_nas.errors import InvalidInput
from ulsam_nas.networks.plan import plan_text

# torchvision's model cards: parameters and GFLOPS (their "GFLOPS" are conv + linear MACs).
PUBLISHED = {
    "mobilenet_v3_large": (5_483_032, 0.22),
    "mobilenet_v3_small": (2_542_856, 0.06),
    "resnet18": (11_689_512, 1.81),
}


def numel(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def traced_macs(model: torch.nn.Module, resolution: int, in_channels: int = 3) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(torch.randn(1, in_channels, resolution, resolution))
    return counter.get_total_flops() // 2


@pytest.mark.parametrize(("backbone", "published"), PUBLISHED.items())
def test_built_ins_reproduce_torchvision(backbone, published):
    params, gmacs = published
    cost = network_cost(backbone)
    model = create_network(backbone)
    assert cost.params == params == numel(model)
    assert round(cost.macs / 1e9, 2) == gmacs
    assert cost.macs == traced_macs(model, 224)


def test_exact_macs_of_the_built_ins():
    # Pinned so that a change to a table shows as a changed number, not only a rounding.
    assert [network_cost(b).macs for b in PUBLISHED] == [216_589_760, 56_510_400, 1_814_073_344]


def test_the_se_blocks_hold_over_a_quarter_of_v3_large_and_under_one_percent_of_its_macs():
    table = backbone_table("mobilenet_v3_large")
    se = [r.spec.gate_cost(*r.in_hw) for r in table.layers if r.spec.has_se]
    assert table.swappable() == [4, 5, 6, 11, 12, 13, 14, 15]
    assert (sum(c.params for c in se), sum(c.macs for c in se)) == (1_512_280, 1_507_200)  # 27.6 %, 0.70 %


@pytest.mark.parametrize("backbone", list(PUBLISHED))
def test_small_stem_ends_on_a_4x4_map(backbone):
    table = backbone_table(backbone, 1.0, 32, 10, 1, "small")
    assert table.layers[-1].out_hw == (4, 4)
    model = create_network(backbone, 0.5, None, resolution=32, num_classes=10, in_channels=1, stem="small")
    assert model.eval()(torch.randn(2, 1, 32, 32)).shape == (2, 10)


def test_resnet18_keeps_torchvisions_block_names():
    names = dict(create_network("resnet18").named_parameters())
    assert "features.layer3.conv1.weight" in names  # torchvision: layer2.0.conv1
    assert "features.layer3.downsample.0.weight" in names
    assert "features.layer4.downsample.0.weight" not in names


def test_swap_replaces_the_se_with_the_module_on_the_expanded_channels():
    table = backbone_table("mobilenet_v3_small", 1.0, 32, 10, 1, "small")
    record = table.layers[5]
    assert (record.spec.hidden_channels, record.out_hw) == (240, (8, 8))
    plain = network_cost("mobilenet_v3_small", 1.0, None, 32, 10, 1, "small")
    swapped = network_cost("mobilenet_v3_small", 1.0, "swap@5:ulsam:groups=4", 32, 10, 1, "small")
    se = record.spec.gate_cost(*record.in_hw)
    ulsam = attention_cost("ulsam", 240, 8, 8, groups=4)
    assert swapped.params == plain.params - se.params + ulsam.params
    assert swapped.macs == plain.macs - se.macs + ulsam.macs
    model = create_network("mobilenet_v3_small", 1.0, "swap@5:ulsam:groups=4", 32, 10, 1, "small")
    assert type(model.features.layer5.block.se).__name__ == "ULSAM"
    assert numel(model) == swapped.params
    assert traced_macs(model, 32, 1) == swapped.macs


def test_swap_none_removes_the_se():
    plan = "swap@4:none"
    removed = network_cost("mobilenet_v3_large", 1.0, plan)
    model = create_network("mobilenet_v3_large", 1.0, plan)
    assert "se" not in dict(model.features.layer4.block.named_children())
    assert removed.params == numel(model)
    assert removed.macs == traced_macs(model, 224)


def test_every_index_at_once_and_a_named_index_overrides_it():
    table = backbone_table("mobilenet_v3_small")
    plan = resolve_plan(table, "swap@*:eca,swap@9:ulsam:groups=8")
    assert [p.index for p in plan] == table.swappable() == [1, 4, 5, 6, 7, 8, 9, 10, 11]
    assert {p.module for p in plan if p.index != 9} == {"eca"}
    assert plan_text(plan).startswith("swap@1:eca:kernel_size=")
    model = create_network("mobilenet_v3_small", 1.0, "swap@*:eca,swap@9:ulsam:groups=8")
    assert numel(model) == network_cost("mobilenet_v3_small", 1.0, plan).params
    assert traced_macs(model, 224) == network_cost("mobilenet_v3_small", 1.0, plan).macs
    assert [p.index for p in resolve_plan(backbone_table("resnet18"), "replace@*:se")] == [1, 2, 4, 6, 8]


def test_breakdown_of_a_swap_sums_to_the_total():
    plan = "swap@*:ulsam:groups=4,replace@3:eca,swap@6:none"
    rows = network_breakdown("mobilenet_v3_small", 0.75, plan)
    total = network_cost("mobilenet_v3_small", 0.75, plan)
    assert sum(r.cost.params for r in rows if not r.replaced) == total.params
    assert sum(r.cost.macs for r in rows if not r.replaced) == total.macs
    assert any(r.what.endswith("(SE removed)") for r in rows)
    assert "layer4.block.se" in [r.name for r in rows]


@pytest.mark.parametrize(
    ("backbone", "plan", "message"),
    [
        (
            "mobilenet_v3_small",
            "swap@2",
            "layer 2 has no attention of its own to swap; swap is allowed at 1, 4,",
        ),
        ("mobilenet_v2", "swap@3:eca", "swap is allowed at nowhere in mobilenet_v2"),
        ("mobilenet_v2", "swap@*:eca", "mobilenet_v2 has no index where swap is allowed"),
        ("mobilenet_v3_small", "insert@3:none", "module 'none' is allowed only as swap@INDEX:none"),
        ("mobilenet_v3_small", "swap@4:none:groups=2", "without options"),
        ("mobilenet_v3_small", "swap@*:eca,swap@*:se", "share index *"),
        ("mobilenet_v3_small", "swap@4:ulsam:groups=7", "swap@4:ulsam:groups=7 (at 96 channels)"),
        ("resnet18", "replace@3", "layer 3 changes the shape (stride 2, 64→128 channels)"),
        ("resnet18", "replace@0", "layer 0 changes the shape"),
        ("mobilenet_v3_large", "replace@16", "layer 16 changes the shape (stride 1, 160→960 channels)"),
    ],
)
def test_bad_swaps_name_the_value_and_what_is_allowed(backbone, plan, message):
    with pytest.raises(
        InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")
    ):
        network_cost(backbone, 1.0, plan)


def test_swap_placements_compare_and_print_like_the_others():
    assert Placement("swap", 4, "none").text() == "swap@4:none"
    assert Placement("swap", "*", "eca").text() == "swap@*:eca"
    assert Placement("swap", "*", "eca").every and not Placement("swap", 4, "eca").every


@pytest.mark.parametrize("index", [-1, -2, -19])
def test_no_integer_means_every_layer(index):
    """-1 once meant ``@*`` internally, so a user's ``insert@-1`` ("the last layer") silently
    placed a module at every layer; any negative index is refused in one line naming it."""
    for plan in (f"insert@{index}", f"replace@{index}:eca", f"swap@{index}:se"):
        with pytest.raises(InvalidInput, match=f"index {index} is negative"):
            network_cost("mobilenet_v2", 1.0, plan)
        with pytest.raises(InvalidInput, match=f"index {index} is negative"):
            create_network("mobilenet_v2", 1.0, plan)
    with pytest.raises(InvalidInput, match=f"index {index} is invalid"):
        Placement("insert", index)


def test_an_every_placement_has_no_index_until_resolved():
    every = Placement("insert", "*")
    with pytest.raises(ValueError, match="no single index"):
        every.index  # noqa: B018
    resolved = resolve_plan(backbone_table("resnet18"), [every])
    assert [p.index for p in resolved] == list(range(len(resolved)))
    assert all(not p.every for p in resolved)
