"""MobileNetV1 (Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile
Vision Applications", arXiv:1704.04861), as TF-slim's ``mobilenet_v1.py`` builds it.

Index 0 is the stem conv3×3 (3→32, stride 2); 1–13 are the depthwise-separable layers
[dw3×3 + BN + ReLU] + [pw1×1 + BN + ReLU]; then global average pool and FC (with bias).  Width
multiplier α: channels ``max(int(c·α), 8)`` (TF-slim's ``min_depth=8``).  ``stem="small"`` (for
32×32 inputs) runs the stem conv and layer 2 at stride 1: total stride 8, a 4×4 final map.
"""

from __future__ import annotations

from ulsam_nas.backbones.layers import LayerSpec

STEM_CHANNELS = 32
# (output channels, stride) of layers 1–13.
LAYERS: tuple[tuple[int, int], ...] = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
)
SMALL_STEM_STRIDE_ONE = (0, 2)  # layer indices that run at stride 1 with stem="small"


def scaled(channels: int, width_mult: float) -> int:
    return max(int(channels * width_mult), 8)


def layer_specs(width_mult: float, in_channels: int, stem: str) -> list[LayerSpec]:
    def stride(index: int, default: int) -> int:
        return 1 if stem == "small" and index in SMALL_STEM_STRIDE_ONE else default

    channels = scaled(STEM_CHANNELS, width_mult)
    specs = [LayerSpec(0, "conv", in_channels, channels, stride(0, 2), kernel=3, activation="relu")]
    for index, (out, s) in enumerate(LAYERS, start=1):
        out_channels = scaled(out, width_mult)
        specs.append(
            LayerSpec(index, "separable", channels, out_channels, stride(index, s), activation="relu")
        )
        channels = out_channels
    return specs
