"""Every registered module: builds, keeps the shape, and its closed form equals the real module."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import ulsam_nas
from tests.strategies import module_case
from ulsam_nas.attention import PAPER_MODULES, get_attention, list_attention
from ulsam_nas.errors import InvalidInput

MODULES = list_attention()


def numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_registry_lists_the_paper_s_six_then_the_later_five():
    assert MODULES == ["non_local", "a2", "se", "bam", "cbam", "ulsam", "gc", "eca", "triplet", "simam", "ca"]
    assert list(PAPER_MODULES) == MODULES[:6]


@pytest.mark.parametrize(("alias", "key"), [("coord", "ca"), ("nl", "non_local")])
def test_timm_names_are_aliases_of_the_same_modules(alias, key):
    assert get_attention(alias).key == key
    assert ulsam_nas.attention_cost(alias, 64, 7, 7) == ulsam_nas.attention_cost(key, 64, 7, 7)


@pytest.mark.parametrize("name", MODULES)
@settings(max_examples=500)
@given(data=st.data())
def test_closed_form_params_equal_the_module(name, data):
    m, h, w, config = data.draw(module_case(name))
    module = ulsam_nas.create_attention(name, m, **config)
    cost = ulsam_nas.attention_cost(name, m, h, w, **config)
    assert cost.params == numel(module)
    assert cost.params == sum(cost.params_by.values())
    assert cost.macs == sum(cost.macs_by.values())


@pytest.mark.parametrize("name", MODULES)
@settings(max_examples=60)
@given(data=st.data())
def test_formula_text_and_number_come_from_one_definition(name, data):
    m, h, w, config = data.draw(module_case(name))
    for convention in ("exact", "paper"):
        cost = ulsam_nas.attention_cost(name, m, h, w, convention, **config)
        formula = ulsam_nas.attention_formula(name, m, h, w, convention, **config)
        assert (int(formula.params), int(formula.macs)) == (cost.params, cost.macs)


@pytest.mark.parametrize("name", MODULES)
@settings(max_examples=150)
@given(data=st.data())
def test_compiled_closed_form_equals_the_primitive_definition(name, data):
    m, h, w, config = data.draw(module_case(name))
    spec = get_attention(name)
    resolved = spec.make_config(m, **config)
    for convention in ("exact", "paper"):
        assert spec.cost(m, h, w, resolved, convention) == spec.terms(m, h, w, resolved, convention).evaluate(
            convention
        )


@pytest.mark.parametrize("name", MODULES)
@settings(max_examples=40)
@given(data=st.data())
def test_forward_keeps_the_input_shape(name, data):
    m, h, w, config = data.draw(module_case(name, max_side=16))
    module = ulsam_nas.create_attention(name, m, **config).eval()
    x = torch.randn(2, m, h, w)
    with torch.no_grad():
        y = module(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", MODULES)
def test_training_step_reaches_every_parameter(name):
    module = ulsam_nas.create_attention(name, 64).train()
    x = torch.randn(4, 64, 6, 5, requires_grad=True)  # SimAM has no parameters: its input's gradient
    module(x).square().mean().backward()
    missing = [n for n, p in module.named_parameters() if p.grad is None]
    assert not missing
    assert x.grad is not None and torch.isfinite(x.grad).all()


# Hand-computed from the layer lists in each module's docstring (m = channels, hw = h·w).
PAPER_SHAPE = dict(channels=512, height=14, width=14)
EXPECTED_512_14_14 = {  # exact params, exact MACs, paper params, paper MACs
    "non_local": (526_592, 122_429_440, 524_288, 102_760_448),
    "a2": (131_776, 27_295_744, 65_536, 12_845_056),
    "se": (33_312, 32_768, 32_768, 32_768),
    "bam": (68_513, 6_862_976, 83_968, 16_490_496),
    "cbam": (33_412, 84_744, 32_866, 51_976),
    "ulsam": (2_572, 200_704, 1_024, 200_704),
    # p = 32: params (512 + 1) + (512·32 + 32) + 2·32 + (32·512 + 512); MACs 2·512·196 + 2·512·32
    "gc": (33_889, 233_472, 33_280, 233_472),
    # k = 5 (|log2 512 / 2 + 1/2| = 5): params k; MACs k·m
    "eca": (5, 2_560, 5, 2_560),
    # 3 gates of 2·49 weights + 2 BN; MACs 98·(m·w + h·m + h·w)
    "triplet": (300, 1_424_136, 294, 1_424_136),
    "simam": (0, 0, 0, 0),
    # d = max(8, 512/32) = 16: params (512·16 + 16) + 2·16 + 2·(16·512 + 512); MACs 2·512·16·(14 + 14)
    "ca": (25_648, 458_752, 24_576, 458_752),
}

# A second shape, m = 96, h×w = 7×5 (non-square), r = 8 (c = 12), t = 12, g = 3:
#  SE    params 2·96·12 + 12 + 96 = 2,412; MACs 2·96·12 = 2,304
#  CBAM  params 2,304 + 12 + 96 + 98 + 2 = 2,512; MACs 4·96·12 + 98·35 = 8,038
#  BAM   params 3·96·12 + 18·12² + 13·12 + 96 + 1 = 6,301; MACs 2,304 + (96·12 + 18·144 + 12)·35 = 133,764
#  NL    i = 48: params 4·96·48 + 3·48 + 3·96 = 18,864; MACs 4·96·48·35 + 2·48·35² = 762,720
#  NL/s  h'×w' = 3×2: MACs 96·48·35 + 2·96·48·6 + 48·96·35 + 2·48·35·6 = 398,016
#  A²    params 4·96·12 + 3·12 + 96 = 4,740; MACs 4·96·12·35 + 2·12²·35 = 171,360
#  ULSAM params 5·96 + 3·3 = 489; MACs 2·96·35 = 6,720
#  GC    ratio 1/8, p = 12: params 97 + 1,164 + 24 + 1,248 = 2,533; MACs 2·96·35 + 2·96·12 = 9,024
#  ECA   k = 3 (|log2 96 / 2 + 1/2| = 3.79): params 3; MACs 3·96 = 288
#  Tri.  params 3·100 = 300; MACs 98·(96·5 + 7·96 + 35) = 116,326; no_spatial 200, 98·1,152 = 112,896
#  CA    r = 8, d = 12: params 1,164 + 24 + 2·1,248 = 3,684; MACs 96·12·12 + 12·96·7 + 12·96·5 = 27,648
SECOND_SHAPE = dict(channels=96, height=7, width=5)
EXPECTED_96_7_5 = {
    ("se", (("reduction", 8),)): (2_412, 2_304),
    ("cbam", (("reduction", 8),)): (2_512, 8_038),
    ("bam", (("reduction", 8),)): (6_301, 133_764),
    ("non_local", ()): (18_864, 762_720),
    ("non_local", (("subsample", True),)): (18_864, 398_016),
    ("a2", (("inner_channels", 12),)): (4_740, 171_360),
    ("ulsam", (("groups", 3),)): (489, 6_720),
    ("gc", (("ratio", 1 / 8),)): (2_533, 9_024),
    ("eca", ()): (3, 288),
    ("triplet", ()): (300, 116_326),
    ("triplet", (("no_spatial", True),)): (200, 112_896),
    ("ca", (("reduction", 8),)): (3_684, 27_648),
    ("simam", ()): (0, 0),
}


@pytest.mark.parametrize("name", MODULES)
def test_exact_and_paper_counts_at_the_paper_shape(name):
    exact = ulsam_nas.attention_cost(name, **PAPER_SHAPE)
    paper = ulsam_nas.attention_cost(name, **PAPER_SHAPE, convention="paper")
    assert (exact.params, exact.macs, paper.params, paper.macs) == EXPECTED_512_14_14[name]
    assert exact.params == numel(ulsam_nas.create_attention(name, 512))


@pytest.mark.parametrize(("key", "expected"), EXPECTED_96_7_5.items(), ids=lambda v: str(v))
def test_exact_counts_at_a_non_square_shape(key, expected):
    name, config = key
    cost = ulsam_nas.attention_cost(name, **SECOND_SHAPE, **dict(config))
    assert (cost.params, cost.macs) == expected


def test_ulsam_params_grow_by_3g_and_macs_do_not_change_with_g():
    costs = {g: ulsam_nas.attention_cost("ulsam", 512, 14, 14, groups=g) for g in (1, 2, 4, 8, 16, 32)}
    assert [c.params for c in costs.values()] == [2563, 2566, 2572, 2584, 2608, 2656]
    assert {c.macs for c in costs.values()} == {200_704}


def test_ulsam_breakdown_matches_the_design_notes():
    cost = ulsam_nas.attention_cost("ulsam", 512, 14, 14, groups=4)
    n, g_hw = 512 * 196, 4 * 196
    assert cost.ops["bias_add"] == n + g_hw
    assert cost.ops["batch_norm"] == n + g_hw
    assert cost.ops["softmax"] == g_hw
    assert cost.ops["max_pool"] == n


# -- ULSAM's vectorised form equals the official per-subspace loop ---------------------------
class _LoopSubspace(nn.Module):
    """One subspace exactly as the official ulsam.py builds it."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv_dws = nn.Conv2d(width, width, 1, groups=width)
        self.bn_dws = nn.BatchNorm2d(width, momentum=0.9)
        self.conv_point = nn.Conv2d(width, 1, 1)
        self.bn_point = nn.BatchNorm2d(1, momentum=0.9)
        self.pool = nn.MaxPool2d(3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pool(torch.relu(self.bn_dws(self.conv_dws(x))))
        out = torch.relu(self.bn_point(self.conv_point(out)))
        b, _, h, w = out.shape
        out = torch.softmax(out.view(b, 1, -1), dim=2).view(b, 1, h, w).expand_as(x)
        return out * x + x


def _loop_copy(module: nn.Module, groups: int, channels: int) -> nn.Module:
    width = channels // groups
    loop = nn.ModuleList(_LoopSubspace(width) for _ in range(groups))
    for k, sub in enumerate(loop):
        part = slice(k * width, (k + 1) * width)
        with torch.no_grad():
            sub.conv_dws.weight.copy_(module.depthwise.weight[part])
            sub.conv_dws.bias.copy_(module.depthwise.bias[part])
            sub.bn_dws.weight.copy_(module.depthwise_bn.weight[part])
            sub.bn_dws.bias.copy_(module.depthwise_bn.bias[part])
            sub.conv_point.weight.copy_(module.pointwise.weight[k : k + 1])
            sub.conv_point.bias.copy_(module.pointwise.bias[k : k + 1])
            sub.bn_point.weight.copy_(module.pointwise_bn.weight[k : k + 1])
            sub.bn_point.bias.copy_(module.pointwise_bn.bias[k : k + 1])
    return loop


@pytest.mark.parametrize("groups", [1, 4, 16])
@pytest.mark.parametrize("training", [True, False])
def test_ulsam_equals_the_official_loop(groups, training):
    torch.manual_seed(0)
    channels = 32
    module = ulsam_nas.create_attention("ulsam", channels, groups=groups)
    with torch.no_grad():  # non-trivial BN affine parameters and running statistics
        for bn in (module.depthwise_bn, module.pointwise_bn):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    loop = _loop_copy(module, groups, channels)
    module.train(training)
    loop.train(training)
    x = torch.randn(3, channels, 6, 5, requires_grad=True)
    x_loop = x.detach().clone().requires_grad_(True)
    y = module(x)
    y_loop = torch.cat(
        [sub(part) for sub, part in zip(loop, torch.chunk(x_loop, groups, dim=1), strict=True)], dim=1
    )
    torch.testing.assert_close(y, y_loop, atol=1e-6, rtol=1e-5)
    y.sum().backward()
    y_loop.sum().backward()
    torch.testing.assert_close(x.grad, x_loop.grad, atol=1e-6, rtol=1e-5)
    running = torch.cat([sub.bn_point.running_mean for sub in loop])
    torch.testing.assert_close(module.pointwise_bn.running_mean, running)
    assert numel(module) == sum(numel(sub) for sub in loop)


# -- bad configurations -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "config", "message"),
    [
        ("ulsam", {"groups": 3}, "groups=3 does not divide channels=64"),
        ("se", {"reduction": 65}, "reduction=65 is larger than channels=64"),
        ("se", {"reduction": 0}, "reduction=0 is invalid"),
        ("cbam", {"groups": 4}, "unknown option 'groups' for cbam; valid options: reduction"),
        ("a2", {"inner_channels": 8, "reconstruct": False}, "reconstruct=false"),
        ("a2", {"inner_channels": 2.5}, "inner_channels=2.5 is invalid"),
        ("non_local", {"subsample": "yes"}, "allowed: true or false"),
        ("ulsam", {"groups": True}, "groups=True is invalid"),
        ("eca", {"kernel_size": 4}, "kernel_size=4 is even"),
        ("triplet", {"kernel_size": 0}, "kernel_size=0 is invalid"),
        ("gc", {"ratio": 1 / 128}, "ratio=1/128 leaves ⌊m · ratio⌋ = 0 planes at channels=64"),
        ("gc", {"ratio": 1.5}, "ratio=1.5 is invalid"),
        ("gc", {"ratio": "x"}, "ratio='x' is invalid"),
        ("simam", {"e_lambda": -1.0}, "e_lambda=-1.0 is invalid"),
        ("ca", {"reduction": 0}, "reduction=0 is invalid"),
        ("triplet", {"no_spatial": 1}, "no_spatial=1 is invalid"),
    ],
)
def test_bad_configs_raise_a_message_naming_the_value(name, config, message):
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(")):
        ulsam_nas.create_attention(name, 64, **config)


def test_unknown_module_lists_the_valid_ones():
    with pytest.raises(InvalidInput, match="valid modules: non_local, a2, se, bam, cbam, ulsam, gc, eca"):
        get_attention("lambda")


@pytest.mark.parametrize(
    ("channels", "kernel"),
    [(1, 1), (2, 1), (8, 3), (64, 3), (96, 3), (128, 5), (256, 5), (512, 5), (1024, 5), (2048, 7)],
)
def test_eca_adaptive_kernel_is_the_nearest_odd_ties_up(channels, kernel):
    # ψ(m) = |log2(m)/2 + 1/2|: 3.5 → 3, 4.0 (a tie between 3 and 5) → 5, 5.5 → 5, 6.0 → 7.
    assert get_attention("eca").make_config(channels).kernel_size == kernel


def test_simam_on_a_one_by_one_map_is_defined():
    x = torch.randn(2, 8, 1, 1)
    y = ulsam_nas.create_attention("simam", 8)(x)
    torch.testing.assert_close(y, x * torch.sigmoid(torch.tensor(0.5)))


def test_gc_starts_as_the_identity():
    x = torch.randn(2, 32, 5, 4)
    torch.testing.assert_close(ulsam_nas.create_attention("gc", 32)(x), x)


@pytest.mark.parametrize("shape", [(0, 14, 14), (64, -1, 14), (64, 14, 0)])
def test_non_positive_sizes_are_refused(shape):
    with pytest.raises(InvalidInput, match="allowed: a positive integer"):
        ulsam_nas.attention_cost("se", *shape)
