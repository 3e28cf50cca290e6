"""Test references: the five later modules as their official code builds them, ported for the
parity tests (``tests/test_official_parity.py``), like ULSAM's per-subspace loop in
``tests/test_attention.py``.

Each class keeps its official file's layers, layer types and forward operations (``nn`` pooling
modules, ``torch.max`` and ``torch.sigmoid_`` where the official code uses them), so that a
counter traces the same ops it would trace on the official module.  Sources:

* ECA: BangguWu/ECANet ``models/eca_module.py`` (``eca_layer``; k given, default 3)
* CA: Andrew-Qibin/CoordAttention ``coordatt.py`` (``CoordAtt(inp, oup, reduction=32)``)
* SimAM: ZjjConan/SimAM ``networks/attentions/simam_module.py`` (n = h·w − 1: NaN on 1×1)
* GC: xvjiarui/GCNet ``mmdet/ops/gcb/context_block.py`` (``ContextBlock``, pooling ``att``,
  fusion ``channel_add``; its mmcv initialisers are left out: the tests copy weights)
* Triplet: landskape-ai/triplet-attention ``triplet_attention.py`` (``TripletAttention``)
"""

from __future__ import annotations

import torch
from torch import nn


class OfficialECA(nn.Module):
    def __init__(self, channel: int, k_size: int = 3) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv1d(1, 1, kernel_size=k_size, padding=(k_size - 1) // 2, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.avg_pool(x)  # (B, C, 1, 1)
        y = self.conv(y.squeeze(-1).transpose(-1, -2)).transpose(-1, -2).unsqueeze(-1)
        return x * self.sigmoid(y).expand_as(x)


class _HardSigmoid(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.relu = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(x + 3) / 6


class _HardSwish(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.sigmoid = _HardSigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.sigmoid(x)


class OfficialCoordAtt(nn.Module):
    def __init__(self, inp: int, oup: int, reduction: int = 32) -> None:
        super().__init__()
        self.pool_h = nn.AdaptiveAvgPool2d((None, 1))
        self.pool_w = nn.AdaptiveAvgPool2d((1, None))
        mip = max(8, inp // reduction)
        self.conv1 = nn.Conv2d(inp, mip, kernel_size=1, stride=1, padding=0)
        self.bn1 = nn.BatchNorm2d(mip)
        self.act = _HardSwish()
        self.conv_h = nn.Conv2d(mip, oup, kernel_size=1, stride=1, padding=0)
        self.conv_w = nn.Conv2d(mip, oup, kernel_size=1, stride=1, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.size()
        x_h = self.pool_h(x)
        x_w = self.pool_w(x).permute(0, 1, 3, 2)
        y = self.act(self.bn1(self.conv1(torch.cat([x_h, x_w], dim=2))))
        x_h, x_w = torch.split(y, [h, w], dim=2)
        a_h = self.conv_h(x_h).sigmoid()
        a_w = self.conv_w(x_w.permute(0, 1, 3, 2)).sigmoid()
        return x * a_w * a_h


class OfficialSimAM(nn.Module):
    def __init__(self, channels: int | None = None, e_lambda: float = 1e-4) -> None:
        super().__init__()
        self.activaton = nn.Sigmoid()
        self.e_lambda = e_lambda

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.size()
        n = w * h - 1
        d = (x - x.mean(dim=[2, 3], keepdim=True)).pow(2)
        y = d / (4 * (d.sum(dim=[2, 3], keepdim=True) / n + self.e_lambda)) + 0.5
        return x * self.activaton(y)


class OfficialContextBlock(nn.Module):
    def __init__(self, inplanes: int, ratio: float) -> None:
        super().__init__()
        self.planes = int(inplanes * ratio)
        self.conv_mask = nn.Conv2d(inplanes, 1, kernel_size=1)
        self.softmax = nn.Softmax(dim=2)
        self.channel_add_conv = nn.Sequential(
            nn.Conv2d(inplanes, self.planes, kernel_size=1),
            nn.LayerNorm([self.planes, 1, 1]),
            nn.ReLU(inplace=True),
            nn.Conv2d(self.planes, inplanes, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channel, height, width = x.size()
        input_x = x.view(batch, channel, height * width).unsqueeze(1)
        mask = self.softmax(self.conv_mask(x).view(batch, 1, height * width)).unsqueeze(-1)
        context = torch.matmul(input_x, mask).view(batch, channel, 1, 1)
        return x + self.channel_add_conv(context)


class _BasicConv(nn.Module):
    def __init__(self, in_planes: int, out_planes: int, kernel_size: int, padding: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_planes, out_planes, kernel_size, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_planes, eps=1e-5, momentum=0.01, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))  # relu=False in the attention gate


class _ZPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((torch.max(x, 1)[0].unsqueeze(1), torch.mean(x, 1).unsqueeze(1)), dim=1)


class _AttentionGate(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.compress = _ZPool()
        self.conv = _BasicConv(2, 1, 7, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid_(self.conv(self.compress(x)))


class OfficialTripletAttention(nn.Module):
    def __init__(self, no_spatial: bool = False) -> None:
        super().__init__()
        self.cw = _AttentionGate()
        self.hc = _AttentionGate()
        self.no_spatial = no_spatial
        if not no_spatial:
            self.hw = _AttentionGate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_out11 = self.cw(x.permute(0, 2, 1, 3).contiguous()).permute(0, 2, 1, 3).contiguous()
        x_out21 = self.hc(x.permute(0, 3, 2, 1).contiguous()).permute(0, 3, 2, 1).contiguous()
        if not self.no_spatial:
            return 1 / 3 * (self.hw(x) + x_out11 + x_out21)
        return 1 / 2 * (x_out11 + x_out21)
