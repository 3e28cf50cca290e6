"""MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
arXiv:1801.04381), as torchvision's ``mobilenet_v2`` builds it.

Index 0 is the stem conv3×3 (3→32, stride 2) + BN + ReLU6; 1–17 are the inverted-residual
blocks (torchvision's ``features[1..17]``); 18 is the last conv1×1 (320→1280) + BN + ReLU6;
then global average pool, dropout and FC (with bias).  Width multiplier α: torchvision's
``_make_divisible(c·α, 8)`` for every width, the last ``_make_divisible(1280·max(1, α), 8)``.
``stem="small"`` (for 32×32 inputs) runs the stem conv and block 2 at stride 1: total stride 8.
"""

from __future__ import annotations

from ulsam_nas.backbones.layers import LayerSpec

STEM_CHANNELS = 32
LAST_CHANNELS = 1280
# Inverted-residual settings: expansion t, output channels c, repeats n, first stride s.
SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
SMALL_STEM_STRIDE_ONE = (0, 2)


def make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's ``_make_divisible``: nearest multiple of ``divisor``, at least ``divisor``,
    never more than 10% below ``value``."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def layer_specs(width_mult: float, in_channels: int, stem: str) -> list[LayerSpec]:
    def stride(index: int, default: int) -> int:
        return 1 if stem == "small" and index in SMALL_STEM_STRIDE_ONE else default

    channels = make_divisible(STEM_CHANNELS * width_mult)
    specs = [LayerSpec(0, "conv", in_channels, channels, stride(0, 2), kernel=3, activation="relu6")]
    index = 1
    for t, c, n, s in SETTINGS:
        out_channels = make_divisible(c * width_mult)
        for repeat in range(n):
            block_stride = stride(index, s if repeat == 0 else 1)
            specs.append(
                LayerSpec(
                    index,
                    "inverted_residual",
                    channels,
                    out_channels,
                    block_stride,
                    expansion=t,
                    activation="relu6",
                )
            )
            channels = out_channels
            index += 1
    last = make_divisible(LAST_CHANNELS * max(1.0, width_mult))
    specs.append(LayerSpec(index, "conv", channels, last, 1, kernel=1, activation="relu6"))
    return specs
