"""Feature-map sizes at resolutions no stride divides: the closed form's shapes and costs equal
the built network's, layer by layer.

Every other network test runs at sizes where ⌈s/2⌉ = ⌊s/2⌋ along the whole stride chain (224,
32, 64, ...), so a size rule rounding the wrong way would pass them; here the input sides are
odd, and the reference is what torch actually computes (shapes seen by hooks, MACs and element
counts from the aten ops of the forward pass, see tests/aten_counts.py).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from tests.aten_counts import closed_form_terms, count_network
from ulsam_nas import Placement, create_network, network_cost
from ulsam_nas.backbones import backbone_table, network_breakdown
from ulsam_nas.backbones.layers import out_size
from ulsam_nas.networks.batch import CostTable
from ulsam_nas.verify.cases import random_plan

BACKBONES = ("mobilenet_v1", "mobilenet_v2")
# Odd sides that halve to odd sides again (33 → 17 → 9 → 5 → 3 → 2), so ⌈·⌉ and ⌊·⌋ part at
# several strides; 225 is ImageNet's 224 + 1.
IMAGENET_RESOLUTIONS = (33, 57, 97, 225)
SMALL_RESOLUTIONS = (9, 15, 33)  # the small stem halves only three times
WIDTH = {"mobilenet_v1": 0.25, "mobilenet_v2": 0.35}  # keeps the 225 forward pass quick


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("kernel", [1, 3, 7])
def test_out_size_equals_the_side_of_a_real_conv(kernel, stride):
    sides = range(1, 40)
    conv = nn.Conv2d(1, 1, kernel, stride, padding=kernel // 2, bias=False)
    with torch.no_grad():
        actual = [conv(torch.zeros(1, 1, side, 2)).shape[-2] for side in sides]
    assert [out_size(side, stride) for side in sides] == actual


def _check_network(backbone, plan, resolution, stem, width_mult, in_channels=3, num_classes=10):
    args = {
        "backbone": backbone,
        "width_mult": width_mult,
        "plan": plan,
        "resolution": resolution,
        "num_classes": num_classes,
        "in_channels": in_channels,
        "stem": stem,
    }
    network = create_network(**args)
    by_name, measured, shapes = count_network(network, (in_channels, resolution, resolution))
    rows = network_breakdown(**args)
    built = [row for row in rows if not row.replaced and row.name != "head"]
    assert list(shapes) == [row.name for row in built]  # every layer and module ran, in order
    for row in built:
        assert shapes[row.name] == (row.in_shape, row.out_shape), row.name
        assert by_name[row.name] == closed_form_terms(row.cost), row.name
    head = rows[-1]
    assert head.in_shape == shapes[built[-1].name][1]
    assert by_name["head"] == closed_form_terms(head.cost)
    cost = network_cost(**args)
    assert measured == closed_form_terms(cost)
    assert cost.macs == sum(measured.get(kind, 0) for kind in ("conv", "linear", "matmul"))


@pytest.mark.parametrize("resolution", IMAGENET_RESOLUTIONS)
@pytest.mark.parametrize("backbone", BACKBONES)
def test_imagenet_stem_at_odd_resolutions(backbone, resolution):
    _check_network(backbone, None, resolution, "imagenet", WIDTH[backbone])


@pytest.mark.parametrize("resolution", SMALL_RESOLUTIONS)
@pytest.mark.parametrize("backbone", BACKBONES)
def test_small_stem_at_odd_resolutions(backbone, resolution):
    _check_network(backbone, None, resolution, "small", WIDTH[backbone], in_channels=1)


def test_last_map_side_at_odd_resolutions():
    # The final map, spelled out: 225 → 113 → 57 → 29 → 15 → 8 with stride 32 (⌊·⌋ would give 7).
    assert backbone_table("mobilenet_v1", resolution=225).layers[-1].out_hw == (8, 8)
    assert backbone_table("mobilenet_v2", resolution=225).layers[-1].out_hw == (8, 8)
    assert backbone_table("mobilenet_v2", resolution=33, stem="small").layers[-1].out_hw == (5, 5)
    assert backbone_table("mobilenet_v1", resolution=1).layers[-1].out_hw == (1, 1)


@settings(max_examples=60)
@given(
    backbone=st.sampled_from(BACKBONES),
    stem=st.sampled_from(["imagenet", "small"]),
    resolution=st.integers(1, 64),
    width_mult=st.sampled_from([0.25, 0.35, 0.5]),
    rng=st.randoms(use_true_random=False),
)
def test_random_plans_at_any_resolution(backbone, stem, resolution, width_mult, rng):
    # Attention modules see the map sizes of the layer they follow, so a plan's modules are
    # costed at those sizes too; sides down to 1 reach the maps where ⌊·⌋ would give 0.
    plan = random_plan(rng, backbone, width_mult, resolution, stem)
    _check_network(backbone, plan, resolution, stem, width_mult)


def test_batch_evaluator_at_an_odd_resolution_equals_the_built_networks():
    # The batch evaluator is a code path of its own (per-width totals plus per-option changes,
    # gathered by numpy); at 57 MobileNetV1's maps are 29, 15, 8, 4 and 2 wide.
    widths = [0.25, 0.5]
    slots = [
        [None, Placement("insert", 4, "ulsam", groups=2)],
        [None, Placement("replace", 5, "ulsam", groups=4), Placement("insert", 5, "cbam", reduction=4)],
        [None, Placement("insert", 12, "se", reduction=8), Placement("insert", 12, "non_local")],
    ]
    table = CostTable([backbone_table("mobilenet_v1", w, 57, 10) for w in widths], slots)
    width_index, choices, costs = table.enumerate_all()
    assert costs.valid.all()
    for i in range(len(width_index)):
        width, plan = widths[width_index[i]], table.placements(choices[i])
        network = create_network("mobilenet_v1", width, plan, resolution=57, num_classes=10)
        _, measured, _ = count_network(network, (3, 57, 57))
        macs = sum(measured.get(kind, 0) for kind in ("conv", "linear", "matmul"))
        params = sum(p.numel() for p in network.parameters())
        assert (costs.macs[i], costs.params[i]) == (macs, params), plan
