"""An example of a user's model file for ``ulsam-nas cost --model MODULE:FACTORY``.

The README's "Any network" section costs these networks. From the repository root::

    ulsam-nas cost --model examples.mynets:resnet_like --input-size 3,32,32 \\
        --plan "insert@layer3.1:ulsam:groups=4,replace@layer2.1:eca"

``MODULE`` is imported with the current directory first on the path (``examples`` is a namespace
package, no ``__init__.py``), and ``FACTORY`` is called with ``--model-args`` (none by default),
so every factory here has defaults.  ``studies/brought_network.yaml`` searches ``resnet_like``
(its width, class count and input channels passed as factory arguments).  The networks are plain
PyTorch, traceable by ``torch.fx``: a small CIFAR-style ResNet (``resnet_like``) and a plain stack
of convolutions (``plain_cnn``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    """A basic residual block: two 3×3 convs with BatchNorm, a functional ReLU, ``out +=
    identity``, and a 1×1 conv + BatchNorm downsample branch where the shape changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        out += identity
        return F.relu(out)


class ResNetLike(nn.Module):
    """A small ResNet for 32×32 inputs: a 3×3 stem, three stages of two basic blocks (``width``,
    2·``width`` and 4·``width`` channels; the second and third stages start at stride 2), a
    functional global average pool and a linear classifier."""

    def __init__(self, width: int = 16, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        self.layer1 = nn.Sequential(Block(width, width, 1), Block(width, width, 1))
        self.layer2 = nn.Sequential(Block(width, 2 * width, 2), Block(2 * width, 2 * width, 1))
        self.layer3 = nn.Sequential(Block(2 * width, 4 * width, 2), Block(4 * width, 4 * width, 1))
        self.fc = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def resnet_like(width: int = 16, num_classes: int = 10, in_channels: int = 3) -> ResNetLike:
    """The README's network: ``ResNetLike`` with 16, 32 and 64 channels and 10 classes by
    default (``--model-args width=32,num_classes=100`` changes them)."""
    return ResNetLike(width, num_classes, in_channels)


def plain_cnn() -> nn.Sequential:
    """A plain VGG-style stack (conv–BN–ReLU, max pools) for 32×32 RGB inputs and 10 classes."""
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 10),
    )
