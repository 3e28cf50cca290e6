"""The five later modules against their official structures (``tests/official_modules.py``):
equal parameter counts, equal outputs after copying the weights (train and eval), and equal
traced counts — so the closed forms, tested against this tool's modules elsewhere, equal the
official modules' counts too.  Random shapes include non-square maps and 1–3 channels."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import ulsam_nas
from tests import official_modules as official
from ulsam_nas.attention import get_attention
from ulsam_nas.cost.conventions import COUNTERS

NEW_MODULES = ["gc", "eca", "triplet", "simam", "ca"]


def official_twin(name: str, channels: int, config: dict[str, Any]) -> nn.Module:
    """The official module for this tool's module ``name`` with ``config`` (resolved)."""
    resolved = get_attention(name).make_config(channels, **config)
    if name == "eca":
        return official.OfficialECA(channels, k_size=resolved.kernel_size)
    if name == "ca":
        return official.OfficialCoordAtt(channels, channels, reduction=resolved.reduction)
    if name == "simam":
        return official.OfficialSimAM(channels, e_lambda=resolved.e_lambda)
    if name == "gc":
        return official.OfficialContextBlock(channels, resolved.ratio)
    assert name == "triplet" and resolved.kernel_size == 7  # the official kernel is hard-coded
    return official.OfficialTripletAttention(no_spatial=resolved.no_spatial)


@st.composite
def parity_case(draw: st.DrawFn, name: str) -> tuple[int, int, int, dict[str, Any]]:
    """(m, h, w, config) the official module also accepts: narrow channel counts as often as
    wide ones, any map except SimAM's 1×1 (NaN in the official code), the official k = 7."""
    m = draw(st.one_of(st.integers(1, 3), st.integers(4, 96)))
    low = 2 if name == "simam" else 1
    h, w = draw(st.integers(low, 20)), draw(st.integers(1, 20))
    config: dict[str, Any] = {}
    if name == "gc":
        config["ratio"] = 1 / draw(st.sampled_from([d for d in (1, 2, 4, 8, 16) if d <= m] or [1]))
    elif name == "ca":
        config["reduction"] = draw(st.integers(1, 64))
    elif name == "eca":
        config = draw(st.sampled_from([{}, {"kernel_size": 1}, {"kernel_size": 5}, {"kernel_size": 9}]))
    elif name == "simam":
        config = draw(st.sampled_from([{}, {"e_lambda": 0.1}]))
    elif name == "triplet":
        config = draw(st.sampled_from([{}, {"no_spatial": True}]))
    return m, h, w, config


def randomized(module: nn.Module) -> nn.Module:
    """Random weights, norm affines and running statistics (GC's last conv too, which starts at
    zero), so that parity is tested away from the initial values."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if tensor.is_floating_point():
                values = torch.rand(tensor.shape, generator=generator) + 0.5
                tensor.copy_(values if "running_var" in name else values - 1.0)
    return module


def copy_weights(source: nn.Module, target: nn.Module) -> None:
    """Copy every parameter and buffer in registration order (the two share the layer order)."""
    pairs = list(zip(source.state_dict().values(), target.state_dict().values(), strict=True))
    with torch.no_grad():
        for a, b in pairs:
            assert a.shape == b.shape
            b.copy_(a)


def numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def pair(name: str, m: int, config: dict[str, Any]) -> tuple[nn.Module, nn.Module]:
    mine = randomized(ulsam_nas.create_attention(name, m, **config))
    theirs = official_twin(name, m, config)
    copy_weights(mine, theirs)
    return mine, theirs


@pytest.mark.parametrize("name", NEW_MODULES)
@pytest.mark.parametrize("training", [False, True])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_outputs_and_parameters_equal_the_official_module(name, training, data):
    m, h, w, config = data.draw(parity_case(name))
    mine, theirs = pair(name, m, config)
    assert numel(mine) == numel(theirs)
    x = torch.randn(3, m, h, w)
    torch.testing.assert_close(
        mine.train(training)(x), theirs.train(training)(x.clone()), atol=1e-5, rtol=1e-5
    )
    if training:  # the running statistics moved alike
        for a, b in zip(mine.buffers(), theirs.buffers(), strict=True):
            torch.testing.assert_close(a.float(), b.float())


@pytest.mark.parametrize("name", NEW_MODULES)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_closed_form_equals_the_official_module_s_params_and_traced_flops(name, data):
    m, h, w, config = data.draw(parity_case(name))
    cost = ulsam_nas.attention_cost(name, m, h, w, **config)
    theirs = official_twin(name, m, config).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        theirs(torch.randn(1, m, h, w))
    assert cost.params == numel(theirs)
    assert counter.get_total_flops() == COUNTERS["torch"].project(cost)


@pytest.mark.tracer
@pytest.mark.parametrize("name", NEW_MODULES)
@settings(max_examples=12, deadline=None)
@given(data=st.data())
def test_fvcore_counts_the_official_module_as_the_closed_form_says(name, data):
    # fvcore sees TorchScript ops, so it tells a pool from a torch.mean and counts LayerNorm.
    from fvcore.nn import FlopCountAnalysis

    m, h, w, config = data.draw(parity_case(name))
    theirs = official_twin(name, m, config).eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analysis = FlopCountAnalysis(theirs, (torch.randn(1, m, h, w),))
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        traced = analysis.total()
    assert traced == COUNTERS["fvcore"].project(ulsam_nas.attention_cost(name, m, h, w, **config))


def test_official_simam_is_nan_on_a_one_by_one_map_and_this_one_is_not():
    x = torch.randn(2, 4, 1, 1)
    assert torch.isnan(official.OfficialSimAM()(x)).all()
    assert torch.isfinite(ulsam_nas.create_attention("simam", 4)(x)).all()


def test_official_triplet_called_with_a_channel_count_drops_the_spatial_gate():
    # TripletAttention(512): 512 lands in no_spatial, which is truthy.
    dropped = official.OfficialTripletAttention(512)  # type: ignore[arg-type]
    assert not hasattr(dropped, "hw") and numel(dropped) == 200
    assert numel(ulsam_nas.create_attention("triplet", 512)) == 300
