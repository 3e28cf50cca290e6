"""ResNet-18 (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016, Table 1),
as torchvision's ``resnet18`` builds it.

Index 0 is the stem conv7×7 (stride 2, 64 channels) + BN + ReLU + max pool 3×3 (stride 2);
1–8 are the basic blocks (torchvision's ``layer1.0`` … ``layer4.1``): two conv3×3 + BN, a
conv1×1 + BN shortcut where the shape changes (blocks 3, 5, 7), ``+``, ReLU; then global average
pool and FC (with bias).  Width multiplier α (not in the paper): ``_make_divisible(c·α, 8)`` for
every width, as MobileNetV2 rounds.  ``stem="small"`` (for 32×32 inputs, as CIFAR ResNets do)
makes the stem a conv3×3 at stride 1 without the max pool: total stride 8, a 4×4 final map.
"""

from __future__ import annotations

from ulsam_nas.backbones.layers import LayerSpec
from ulsam_nas.backbones.mobilenet_v2 import make_divisible

STEM_CHANNELS = 64
# (output channels, first stride) of the four stages of two basic blocks each.
STAGES: tuple[tuple[int, int], ...] = ((64, 1), (128, 2), (256, 2), (512, 2))
BLOCKS_PER_STAGE = 2


def layer_specs(width_mult: float, in_channels: int, stem: str) -> list[LayerSpec]:
    channels = make_divisible(STEM_CHANNELS * width_mult)
    if stem == "small":
        specs = [LayerSpec(0, "conv", in_channels, channels, 1, kernel=3, activation="relu")]
    else:
        specs = [LayerSpec(0, "conv_pool", in_channels, channels, 4, kernel=7, activation="relu")]
    for out, first_stride in STAGES:
        out_channels = make_divisible(out * width_mult)
        for repeat in range(BLOCKS_PER_STAGE):
            stride = first_stride if repeat == 0 else 1
            specs.append(LayerSpec(len(specs), "basic", channels, out_channels, stride))
            channels = out_channels
    return specs
