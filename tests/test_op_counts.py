"""The element counts in ``Cost.ops`` (and the MACs by kind) equal a count of the aten ops the
real module runs: every key, for every registered module, on random odd and non-square maps.

The other tests check ``params`` and the MAC totals; nothing else looks at ``mul``, ``add``,
``sigmoid`` or ``channel_pool``, which the known-different counters' explanations depend on.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ulsam_nas
from tests.aten_counts import closed_form_terms, count_module, count_network
from tests.strategies import module_case
from ulsam_nas.attention import list_attention
from ulsam_nas.cost.cost import OP_UNITS

MODULES = list_attention()

# The keys each module's closed form must state (non-zero at every shape the strategies draw),
# so that a module losing a term is a failure even where the real module would also lack it.
EXPECTED_KEYS = {
    "non_local": {"conv", "matmul", "bias_add", "mul", "softmax", "batch_norm", "add"},
    "a2": {"conv", "matmul", "bias_add", "softmax"},
    "se": {"linear", "bias_add", "global_avg_pool", "relu", "sigmoid", "mul"},
    "bam": {"conv", "linear", "bias_add", "global_avg_pool", "batch_norm", "relu", "sigmoid", "mul", "add"},
    "cbam": {
        "conv",
        "linear",
        "bias_add",
        "global_avg_pool",
        "global_max_pool",
        "relu",
        "add",
        "sigmoid",
        "mul",
        "channel_pool",
        "batch_norm",
    },
    "ulsam": {"conv", "bias_add", "batch_norm", "relu", "max_pool", "softmax", "mul", "add"},
    "gc": {"conv", "bias_add", "softmax", "matmul", "layer_norm", "relu", "add"},
    "eca": {"conv", "global_avg_pool", "sigmoid", "mul"},
    "triplet": {"channel_pool", "conv", "batch_norm", "sigmoid", "mul", "add"},
    # SimAM's spatial_mean and CA's axis_avg_pool are compared as global_avg_pool (AVERAGES)
    "simam": {"global_avg_pool", "sub", "square", "spatial_sum", "div", "add", "mul", "sigmoid"},
    "ca": {"global_avg_pool", "conv", "bias_add", "batch_norm", "add", "relu6", "div", "mul", "sigmoid"},
}


def test_expected_keys_cover_every_module_and_only_known_units():
    assert set(EXPECTED_KEYS) == set(SMALL_CONFIGS) == set(MODULES)
    for keys in EXPECTED_KEYS.values():
        assert keys <= {"conv", "linear", "matmul", *OP_UNITS}


@pytest.mark.parametrize("name", MODULES)
@settings(max_examples=150)
@given(data=st.data())
def test_closed_form_op_counts_equal_the_real_forward_pass(name, data):
    m, h, w, config = data.draw(module_case(name))
    module = ulsam_nas.create_attention(name, m, **config)
    cost = ulsam_nas.attention_cost(name, m, h, w, **config)
    expected = closed_form_terms(cost)
    assert expected.keys() >= EXPECTED_KEYS[name]
    assert count_module(module, (m, h, w)) == expected


# Options at which no width divides evenly on 30 channels: ⌊30/4⌋ = 7 (SE, BAM, CBAM, GC), t =
# ⌊30/8⌋ = 3 (A²), 5 subspaces of 6 (ULSAM), keys on a ⌊7/2⌋×⌊5/2⌋ grid (Non-local), 15 mid
# channels (CA).
SMALL_CONFIGS = {
    "non_local": {"subsample": True},
    "a2": {},
    "se": {"reduction": 4},
    "bam": {"reduction": 4},
    "cbam": {"reduction": 4},
    "ulsam": {"groups": 5},
    "gc": {"ratio": 1 / 4},  # 7 planes
    "eca": {},  # the adaptive kernel: 3 at 30 channels
    "triplet": {"kernel_size": 3},
    "simam": {},
    "ca": {"reduction": 2},  # 15 mid channels
}


@pytest.mark.parametrize("name", MODULES)
def test_op_counts_at_a_small_odd_non_square_shape(name):
    # The same rule at one hand-picked shape, which the random draws may or may not reach: a
    # 30×7×5 map.
    config = SMALL_CONFIGS[name]
    module = ulsam_nas.create_attention(name, 30, **config)
    cost = ulsam_nas.attention_cost(name, 30, 7, 5, **config)
    assert count_module(module, (30, 7, 5)) == closed_form_terms(cost)


@pytest.mark.parametrize("backbone", ["mobilenet_v1", "mobilenet_v2"])
def test_backbone_op_counts_equal_the_real_forward_pass(backbone):
    # BatchNorm and ReLU/ReLU6 after every conv, MobileNetV2's residual adds, the head's pool
    # and FC bias; at the standard 224 input, so every stride divides evenly (the odd
    # resolutions are tests/test_output_sizes.py's).
    network = ulsam_nas.create_network(backbone, 0.5, resolution=224)
    _, measured, _ = count_network(network, (3, 224, 224), batch=1)
    expected = closed_form_terms(ulsam_nas.network_cost(backbone, 0.5, resolution=224))
    assert measured == expected
    activation = "relu6" if backbone == "mobilenet_v2" else "relu"
    assert {"batch_norm", activation, "global_avg_pool", "bias_add"} <= expected.keys()
    assert ("add" in expected) == (backbone == "mobilenet_v2")
