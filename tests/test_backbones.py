"""MobileNets, placement plans and whole-network closed forms (no tracing)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ulsam_nas import Placement, create_network, network_cost
from ulsam_nas.backbones import BACKBONES, backbone_table, network_breakdown, parse_plan, plan_text
from ulsam_nas.errors import InvalidInput
from ulsam_nas.networks.batch import CostTable
from ulsam_nas.verify.cases import BACKBONE_WIDTHS, random_plan


def numel(model) -> int:
    return sum(p.numel() for p in model.parameters())


# MobileNetV1 paper (arXiv:1704.04861) Table 6: million mult-adds and million params at 224.
MV1_TABLE6 = {1.0: (569, 4.2), 0.75: (325, 2.6), 0.5: (149, 1.3), 0.25: (41, 0.5)}
# TF-slim research/slim/nets/mobilenet/README.md: MobileNetV2 million MACs at 224.  The table
# truncates (1.0: 300.77 M prints as 300), where the MobileNetV1 paper rounds (568.74 M as 569).
MV2_TF_SLIM_MACS = {1.4: 582, 1.3: 509, 1.0: 300, 0.75: 209, 0.5: 97, 0.35: 59}


@pytest.mark.parametrize(("alpha", "published"), MV1_TABLE6.items())
def test_mobilenet_v1_reproduces_table_6(alpha, published):
    cost = network_cost("mobilenet_v1", alpha)
    assert (round(cost.macs / 1e6), round(cost.params / 1e6, 1)) == published


@pytest.mark.parametrize(("alpha", "published"), MV2_TF_SLIM_MACS.items())
def test_mobilenet_v2_reproduces_tf_slim_macs(alpha, published):
    assert network_cost("mobilenet_v2", alpha).macs // 10**6 == published


def test_mobilenet_v2_params_equal_torchvision():
    assert network_cost("mobilenet_v2", 1.0).params == 3_504_872  # torchvision.models.mobilenet_v2()
    assert network_cost("mobilenet_v1", 1.0).params == 4_231_976


def test_mobilenet_v1_table_7_resolutions_truncated():
    # Table 7 prints 418, 290 and 186 million mult-adds for 192, 160, 128: truncated, not rounded.
    assert [network_cost("mobilenet_v1", 1.0, resolution=r).macs // 10**6 for r in (192, 160, 128)] == [
        418,
        290,
        186,
    ]


# The ULSAM paper's MobileNet rows (authors' WACV 2020 slides and poster).  The paper adds its
# paper-convention deltas (ULSAM 2m params, 2m·hw FLOPs; replaced layers' weights and MACs
# removed, BN excluded) to the *nominal* backbone figures, then rounds or truncates.
NOMINAL = {
    ("mobilenet_v1", 1.0): (4.2, 569),
    ("mobilenet_v1", 0.75): (2.6, 325),
    ("mobilenet_v1", 0.5): (1.3, 149),
    ("mobilenet_v2", 1.0): (3.4, 300),
}
ULSAM_PAPER_ROWS = [  # backbone, α, plan, printed params (M), printed FLOPs (M)
    ("mobilenet_v1", 1.0, "insert@9", 4.2, 569.2),
    ("mobilenet_v1", 1.0, "insert@13", 4.2, 569.1),
    ("mobilenet_v1", 1.0, "replace@9", 3.9, 517),
    ("mobilenet_v1", 0.75, "replace@9", 2.4, 296),
    ("mobilenet_v1", 0.5, "replace@9", 1.2, 136),
    ("mobilenet_v2", 1.0, "insert@16", 3.4, 300.01),
    ("mobilenet_v2", 1.0, "replace@12", 3.28, 277.34),
    ("mobilenet_v2", 1.0, "replace@15", 3.08, 284.54),
    ("mobilenet_v2", 1.0, "replace@12,replace@15", 2.96, 261.88),
    ("mobilenet_v2", 1.0, "replace@15,replace@16", 2.77, 269.07),
    ("mobilenet_v2", 1.0, "replace@8,replace@12", 3.23, 267.06),
    ("mobilenet_v2", 1.0, "replace@12,replace@13,replace@15,replace@16", 2.54, 223.77),
]


def _last_digit(printed: float) -> float:
    text = repr(printed)
    return 10.0 ** -(len(text.split(".")[1]) if "." in text and not text.endswith(".0") else 0)


@pytest.mark.parametrize(("backbone", "alpha", "plan", "params_m", "flops_m"), ULSAM_PAPER_ROWS)
@pytest.mark.parametrize("groups", [1, 4, 16])
def test_ulsam_paper_rows_to_their_printed_digits(backbone, alpha, plan, params_m, flops_m, groups):
    plan = ",".join(f"{p}:ulsam:groups={groups}" for p in plan.split(","))
    vanilla = network_cost(backbone, alpha, convention="paper")
    variant = network_cost(backbone, alpha, plan, convention="paper")
    nominal_params, nominal_flops = NOMINAL[(backbone, alpha)]
    params = nominal_params + (variant.params - vanilla.params) / 1e6
    flops = nominal_flops + (variant.macs - vanilla.macs) / 1e6
    assert abs(params - params_m) < _last_digit(params_m)
    assert abs(flops - flops_m) < _last_digit(flops_m)


def test_paper_convention_counts_ulsam_as_2m_and_removes_the_layer():
    vanilla = network_cost("mobilenet_v1", 1.0, convention="paper")
    variant = network_cost("mobilenet_v1", 1.0, "replace@9", convention="paper")
    layer = 512 * 9 + 512 * 512  # depthwise + pointwise weights of a 14×14×512 layer; BN excluded
    assert variant.params - vanilla.params == 2 * 512 - layer
    assert variant.macs - vanilla.macs == 2 * 512 * 196 - layer * 196


# Measured in shared/design/proxy-signal.md (MobileNetV1 α0.5, 1×32×32, 10 classes; params do
# not depend on strides).
@pytest.mark.parametrize(
    ("plan", "params"),
    [
        ("", 823_434),
        ("insert@9:groups=4", 824_726),
        ("replace@9:groups=4", 755_862),
        ("replace@9:groups=1", 755_853),
        ("replace@9:groups=16", 755_898),
    ],
)
def test_params_of_the_measured_proxy_variants(plan, params):
    cost = network_cost("mobilenet_v1", 0.5, plan, resolution=32, num_classes=10, in_channels=1, stem="small")
    assert cost.params == params


@st.composite
def network_args(draw: st.DrawFn) -> dict:
    backbone = draw(st.sampled_from(list(BACKBONES)))
    width = draw(st.sampled_from(BACKBONE_WIDTHS) | st.floats(0.1, 1.6))
    stem = draw(st.sampled_from(["imagenet", "small"]))
    resolution = draw(st.integers(8, 96))
    plan = random_plan(draw(st.randoms(use_true_random=False)), backbone, width, resolution, stem)
    return {
        "backbone": backbone,
        "width_mult": width,
        "plan": plan,
        "resolution": resolution,
        "stem": stem,
        "num_classes": draw(st.sampled_from([10, 1000])),
        "in_channels": draw(st.sampled_from([1, 3])),
    }


@settings(max_examples=150)
@given(args=network_args())
def test_closed_form_params_equal_the_built_network(args):
    assert network_cost(**args).params == numel(create_network(**args))


@settings(max_examples=40)
@given(args=network_args())
def test_breakdown_rows_sum_to_the_total(args):
    rows = network_breakdown(**args)
    total = network_cost(**args)
    assert sum(r.cost.params for r in rows if not r.replaced) == total.params
    assert sum(r.cost.macs for r in rows if not r.replaced) == total.macs


def test_small_stem_ends_on_a_4x4_map_and_forward_works():
    import torch

    for backbone in ("mobilenet_v1", "mobilenet_v2"):
        table = backbone_table(backbone, 0.5, 32, 10, 1, "small")
        assert table.layers[-1].out_hw == (4, 4)
        model = create_network(
            backbone, 0.5, "insert@5:groups=2", resolution=32, num_classes=10, in_channels=1, stem="small"
        ).eval()
        assert model(torch.randn(2, 1, 32, 32)).shape == (2, 10)


# -- plans -------------------------------------------------------------------------------------
def test_plan_text_round_trips_sorted_with_defaults_filled():
    placements = parse_plan("insert@13:groups=8, replace@9:ulsam:groups=4")
    assert plan_text(placements) == "replace@9:ulsam:groups=4,insert@13:ulsam:groups=8"
    assert placements[0] == Placement("replace", 9, "ulsam", groups=4)
    table = backbone_table("mobilenet_v1")
    from ulsam_nas.backbones import resolve_plan

    assert plan_text(resolve_plan(table, "insert@3")) == "insert@3:ulsam:groups=4"
    assert plan_text(resolve_plan(table, "insert@3:se")) == "insert@3:se:reduction=16"


@pytest.mark.parametrize(
    ("backbone", "plan", "message"),
    [
        ("mobilenet_v1", "replace@6", "layer 6 changes the shape (stride 2, 256→512 channels)"),
        ("mobilenet_v1", "replace@2", "replace is allowed at 3, 5, 7, 8, 9, 10, 11, 13"),
        ("mobilenet_v2", "replace@18", "layer 18 changes the shape (stride 1, 320→1280 channels)"),
        ("mobilenet_v2", "replace@0", "not allowed"),
        ("mobilenet_v2", "insert@19", "index 19 is out of range for mobilenet_v2; allowed: 0..18"),
        ("mobilenet_v1", "insert@9:groups=3", "groups=3 does not divide channels=512"),
        ("mobilenet_v1", "insert@9,replace@9", "share index 9"),
        ("mobilenet_v1", "insert9", "malformed"),
        ("mobilenet_v1", "insert@x", "index 'x' is not an integer"),
        ("mobilenet_v1", "move@3", "action 'move' is unknown"),
        ("mobilenet_v1", "insert@3:lambda", "unknown attention module 'lambda'"),
        ("mobilenet_v1", "insert@3:ulsam:ulsam", "neither a module"),
    ],
)
def test_invalid_plans_are_rejected_with_a_clear_message(backbone, plan, message):
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        network_cost(backbone, 1.0, plan)


def test_placements_are_order_independent():
    a = network_cost("mobilenet_v2", 0.75, "replace@12:groups=2,insert@4:se")
    b = network_cost("mobilenet_v2", 0.75, [Placement("insert", 4, "se"), Placement("replace", 12, groups=2)])
    assert a == b


@pytest.mark.parametrize(
    "bad",
    [{"width_mult": 0}, {"width_mult": -1.0}, {"resolution": 0}, {"stem": "tiny"}, {"backbone": "resnet50"}],
)
def test_bad_network_arguments(bad):
    args = {"backbone": "mobilenet_v1", **bad}
    with pytest.raises(InvalidInput):
        network_cost(**args)


# -- batch evaluator ----------------------------------------------------------------------------
def test_batch_evaluator_equals_the_scalar_closed_form():
    widths = [0.35, 0.5, 1.0]
    slots = [
        [None] + [Placement(a, i, "ulsam", groups=g) for a in ("insert", "replace") for g in (1, 4, 16)]
        for i in (3, 9, 13)
    ]
    table = CostTable([backbone_table("mobilenet_v1", w, resolution=64) for w in widths], slots)
    width_index, choices, costs = table.enumerate_all()
    assert len(width_index) == 3 * 7**3
    rng = np.random.default_rng(0)
    for i in rng.choice(len(width_index), 150, replace=False):
        plan = table.placements(choices[i])
        width = widths[width_index[i]]
        if costs.valid[i]:
            cost = network_cost("mobilenet_v1", width, plan, resolution=64)
            assert (cost.params, cost.macs) == (costs.params[i], costs.macs[i])
        else:
            with pytest.raises(InvalidInput):
                network_cost("mobilenet_v1", width, plan, resolution=64)


@settings(max_examples=200)
@given(
    kind=st.sampled_from(["conv", "separable", "inverted_residual"]),
    cin=st.integers(1, 64),
    cout=st.integers(1, 64),
    stride=st.sampled_from([1, 2]),
    kernel=st.sampled_from([1, 3]),
    expansion=st.sampled_from([1, 6]),
    activation=st.sampled_from(["relu", "relu6"]),
    h=st.integers(1, 40),
    w=st.integers(1, 40),
)
def test_compiled_layer_cost_equals_the_primitive_definition(
    kind, cin, cout, stride, kernel, expansion, activation, h, w
):
    from ulsam_nas.backbones.layers import LayerSpec

    spec = LayerSpec(0, kind, cin, cout, stride, kernel, expansion, activation)
    assert spec.cost(h, w) == spec.terms(h, w).evaluate("exact")


def test_a_shape_however_spelled_has_one_table_and_a_resolved_plan_is_not_resolved_again(monkeypatch):
    from ulsam_nas.backbones import BackboneShape
    from ulsam_nas.backbones import network as backbone_network
    from ulsam_nas.verify.backbone_report import network_report

    table = backbone_table("mobilenet_v1", 0.5, 32, 10, 1, "small")
    assert (
        backbone_table(
            "mobilenet_v1", width_mult=0.5, resolution=32, num_classes=10, in_channels=1, stem="small"
        )
        is table
    )
    assert BackboneShape("mobilenet_v1", 0.5, 32, 10, 1, "small").table() is table
    calls = []
    original = backbone_network.parse_plan
    monkeypatch.setattr(backbone_network, "parse_plan", lambda plan: calls.append(plan) or original(plan))
    report = network_report(
        "mobilenet_v1", plan="replace@9", breakdown=True, width_mult=0.5, resolution=32, num_classes=10,
        in_channels=1, stem="small",
    )  # fmt: skip
    assert calls == ["replace@9"]  # cost, breakdown and text share one resolution
    assert report["macs"] == network_cost("mobilenet_v1", 0.5, "replace@9", 32, 10, 1, "small").macs
    resolved = table.resolve("replace@9")
    assert table.resolve(resolved) is resolved
    other = backbone_table("mobilenet_v1", 0.75, 32, 10, 1, "small")
    assert other.resolve(resolved) is not resolved  # another network resolves it afresh
    with pytest.raises(InvalidInput, match="width_mult"):
        BackboneShape("mobilenet_v1", -1.0)


def test_a_table_remembers_what_it_derived_in_its_own_bounded_memo():
    from ulsam_nas.networks.memo import Memo

    table = backbone_table("mobilenet_v1", 0.5, 32, 10, 1, "small")
    table.memo.clear()
    first = table.placement_cost(table.resolve("replace@9")[0], "exact")
    assert len(table.memo) == 2  # the resolved placement and its cost
    assert table.placement_cost(table.resolve("replace@9")[0], "exact") is first
    memo, calls = Memo(limit=2), []
    for key in (1, 2, 1, 3, 1):
        memo.get(key, lambda key=key: calls.append(key) or key)
    assert calls == [1, 2, 3, 1] and len(memo) == 2  # full at 3: emptied, then refilled


@pytest.mark.parametrize(
    ("backbone", "plans"),
    [
        (
            "mobilenet_v1",
            ["replace@7:ulsam:groups=4,replace@9:ulsam:groups=4", "insert@3:se:reduction=4,replace@9:eca"],
        ),
        ("mobilenet_v3_small", ["swap@4:eca,swap@5:none", "insert@2:ulsam:groups=4,swap@*:ulsam:groups=4"]),
    ],
)
def test_plain_first_builds_the_same_network_with_the_shared_layers_initialised_alike(backbone, plans):
    table = backbone_table(backbone, 0.5, 32, 10, 1, "small")

    def weights(plan: str, plain_first: bool) -> dict[str, torch.Tensor]:
        torch.manual_seed(7)
        return table.build(plan, plain_first=plain_first).state_dict()

    plain = weights("", False)
    assert weights("", True).keys() == plain.keys()
    for plan in plans:
        first, ordered = weights(plan, True), weights(plan, False)
        assert {k: v.shape for k, v in first.items()} == {k: v.shape for k, v in ordered.items()}
        shared = [k for k in first if k in plain and first[k].shape == plain[k].shape]
        assert all(torch.equal(first[k], plain[k]) for k in shared)  # every shared layer as in plain
        # In network order, a module drawn before a layer moves that layer's initialisation.
        assert not all(torch.equal(ordered[k], plain[k]) for k in shared if k.startswith("classifier"))
