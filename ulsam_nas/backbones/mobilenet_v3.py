"""MobileNetV3-Large and -Small (Howard et al., "Searching for MobileNetV3", ICCV 2019,
arXiv:1905.02244, Tables 1 and 2), as torchvision's ``mobilenet_v3_large``/``_small`` build them.

Index 0 is the stem conv3×3 (stride 2, 16 channels) + BN + hard swish; 1–15 (Large) or 1–11
(Small) are the bneck blocks: [expand 1×1 + BN + act, unless the expansion equals the input] →
depthwise k×k + BN + act → [SE: pool, 1×1 conv to ``_make_divisible(exp // 4, 8)`` + ReLU,
1×1 conv back + hard sigmoid, scale] → project 1×1 + BN, with ``+`` when the shape is kept; the
last index is the conv1×1 to 6× the last block's channels + BN + hard swish.  Then global
average pool and the classifier FC(→1280 Large, →1024 Small) + hard swish + dropout 0.2 + FC.
Width multiplier α: torchvision's ``_make_divisible(c·α, 8)`` for every input, expanded and
output width and for the classifier's hidden width; the last conv is 6× the last block's output.
BatchNorm uses PyTorch's defaults (torchvision trains V3 with eps 0.001, momentum 0.01; the cost
is the same).  ``stem="small"`` (for 32×32 inputs) runs the stem and the first stride-2 block at
stride 1: total stride 8, a 4×4 final map.
"""

from __future__ import annotations

from ulsam_nas.backbones.layers import LayerSpec
from ulsam_nas.backbones.mobilenet_v2 import make_divisible

STEM_CHANNELS = 16
# torchvision's bneck rows: input, kernel, expanded, output, SE, activation, stride.
Row = tuple[int, int, int, int, bool, str, int]
LARGE: tuple[Row, ...] = (
    (16, 3, 16, 16, False, "relu", 1),
    (16, 3, 64, 24, False, "relu", 2),
    (24, 3, 72, 24, False, "relu", 1),
    (24, 5, 72, 40, True, "relu", 2),
    (40, 5, 120, 40, True, "relu", 1),
    (40, 5, 120, 40, True, "relu", 1),
    (40, 3, 240, 80, False, "hardswish", 2),
    (80, 3, 200, 80, False, "hardswish", 1),
    (80, 3, 184, 80, False, "hardswish", 1),
    (80, 3, 184, 80, False, "hardswish", 1),
    (80, 3, 480, 112, True, "hardswish", 1),
    (112, 3, 672, 112, True, "hardswish", 1),
    (112, 5, 672, 160, True, "hardswish", 2),
    (160, 5, 960, 160, True, "hardswish", 1),
    (160, 5, 960, 160, True, "hardswish", 1),
)
SMALL: tuple[Row, ...] = (
    (16, 3, 16, 16, True, "relu", 2),
    (16, 3, 72, 24, False, "relu", 2),
    (24, 3, 88, 24, False, "relu", 1),
    (24, 5, 96, 40, True, "hardswish", 2),
    (40, 5, 240, 40, True, "hardswish", 1),
    (40, 5, 240, 40, True, "hardswish", 1),
    (40, 5, 120, 48, True, "hardswish", 1),
    (48, 5, 144, 48, True, "hardswish", 1),
    (48, 5, 288, 96, True, "hardswish", 2),
    (96, 5, 576, 96, True, "hardswish", 1),
    (96, 5, 576, 96, True, "hardswish", 1),
)
CLASSIFIER_WIDTH = {"mobilenet_v3_large": 1280, "mobilenet_v3_small": 1024}


def _layer_specs(rows: tuple[Row, ...], width_mult: float, in_channels: int, stem: str) -> list[LayerSpec]:
    first_stride_two = next(i for i, row in enumerate(rows, start=1) if row[6] == 2)
    small = stem == "small"
    specs = [
        LayerSpec(
            0,
            "conv",
            in_channels,
            make_divisible(STEM_CHANNELS * width_mult),
            1 if small else 2,
            kernel=3,
            activation="hardswish",
        )
    ]
    for index, (cin, kernel, expanded, cout, se, act, stride) in enumerate(rows, start=1):
        hidden = make_divisible(expanded * width_mult)
        specs.append(
            LayerSpec(
                index,
                "bneck",
                make_divisible(cin * width_mult),
                make_divisible(cout * width_mult),
                1 if small and index == first_stride_two else stride,
                kernel=kernel,
                activation=act,
                hidden=hidden,
                squeeze=make_divisible(hidden // 4) if se else 0,
            )
        )
    last = specs[-1].out_channels
    specs.append(LayerSpec(len(specs), "conv", last, 6 * last, 1, kernel=1, activation="hardswish"))
    return specs


def large_layer_specs(width_mult: float, in_channels: int, stem: str) -> list[LayerSpec]:
    return _layer_specs(LARGE, width_mult, in_channels, stem)


def small_layer_specs(width_mult: float, in_channels: int, stem: str) -> list[LayerSpec]:
    return _layer_specs(SMALL, width_mult, in_channels, stem)


def classifier_width(backbone: str, width_mult: float) -> int:
    return make_divisible(CLASSIFIER_WIDTH[backbone] * width_mult)
