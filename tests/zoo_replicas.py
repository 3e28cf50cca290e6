"""Hand-written replicas of how timm's and torchvision's compact networks are built, one pattern
each, small enough to trace in CI (the real libraries cannot be dependencies here).  Each factory
is importable by a counter's own process."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class BatchNormAct2d(nn.BatchNorm2d):
    """timm's BatchNormAct2d: a BatchNorm subclass that calls ``F.batch_norm`` itself, then an
    activation module."""

    def __init__(self, channels: int, act: type[nn.Module] = nn.SiLU) -> None:
        super().__init__(channels)
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return self.act(x)


class LayerNorm2d(nn.LayerNorm):
    """timm's LayerNorm2d: ``F.layer_norm`` over the channels of an NCHW map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class Linear(nn.Linear):
    """timm's Linear: ``F.linear`` called by the subclass."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """timm's drop_path: the identity unless training."""
    if p == 0.0 or not training:
        return x
    keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1 - p)
    return x * keep / (1 - p)


def stochastic_depth(x: torch.Tensor, p: float, mode: str, training: bool = True) -> torch.Tensor:
    """torchvision's stochastic depth, which torchvision wraps for torch.fx (one call node)."""
    if not training or p == 0.0:
        return x
    keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1 - p)
    return x * keep / (1 - p)


stochastic_depth.__module__ = "torchvision.ops.stochastic_depth"  # as torchvision's own is named
torch.fx.wrap("stochastic_depth")


class DownsampleAvg(nn.Module):
    """ResNet-D's shortcut: a 2×2 average pool (ceil mode, padding not counted), then 1×1 conv + BN."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False)
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(self.pool(x)))


class BasicBlockD(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = BatchNormAct2d(cout, nn.ReLU)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = DownsampleAvg(cin, cout) if stride != 1 or cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(self.bn2(self.conv2(self.bn1(self.conv1(x)))) + shortcut)


class GhostModuleV2(nn.Module):
    """GhostNetV2's ghost module: a primary conv, a cheap depthwise conv, concatenated and cut to
    ``cout``, gated by the DFC attention computed at half resolution and resized back."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.cout = cout
        init = math.ceil(cout / 2)
        self.primary = nn.Sequential(nn.Conv2d(cin, init, 1, bias=False), BatchNormAct2d(init, nn.ReLU))
        self.cheap = nn.Sequential(
            nn.Conv2d(init, init, 3, 1, 1, groups=init, bias=False), BatchNormAct2d(init, nn.ReLU)
        )
        self.short = nn.Sequential(
            nn.Conv2d(cin, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.Conv2d(cout, cout, (1, 5), 1, (0, 2), groups=cout, bias=False),
            nn.BatchNorm2d(cout),
            nn.Conv2d(cout, cout, (5, 1), 1, (2, 0), groups=cout, bias=False),
            nn.BatchNorm2d(cout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.short(F.avg_pool2d(x, kernel_size=2, stride=2))
        x1 = self.primary(x)
        out = torch.cat([x1, self.cheap(x1)], dim=1)[:, : self.cout]
        return out * F.interpolate(torch.sigmoid(gate), size=out.shape[-2:], mode="nearest")


class MBConv(nn.Module):
    """EfficientNet's inverted residual: expand, depthwise, SE (mean, SiLU), project, stochastic
    depth, residual."""

    def __init__(self, channels: int, expand: int = 4, drop: float = 0.2) -> None:
        super().__init__()
        mid, squeezed = channels * expand, max(1, channels // 4)
        self.conv_pw = nn.Conv2d(channels, mid, 1, bias=False)
        self.bn1 = BatchNormAct2d(mid)
        self.conv_dw = nn.Conv2d(mid, mid, 3, 1, 1, groups=mid, bias=False)
        self.bn2 = BatchNormAct2d(mid)
        self.se_reduce = nn.Conv2d(mid, squeezed, 1)
        self.se_act = nn.SiLU()
        self.se_expand = nn.Conv2d(squeezed, mid, 1)
        self.conv_pwl = nn.Conv2d(mid, channels, 1, bias=False)
        self.bn3 = BatchNormAct2d(channels, nn.Identity)
        self.drop = drop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv_dw(self.bn1(self.conv_pw(x))))
        s = self.se_expand(self.se_act(self.se_reduce(y.mean((2, 3), keepdim=True))))
        y = self.bn3(self.conv_pwl(y * s.sigmoid()))
        return x + drop_path(y, self.drop, self.training)


class ConvNeXtBlock(nn.Module):
    """ConvNeXt: depthwise 7×7, LayerNorm2d, MLP on channels-last with GELU, layer scale."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_dw = nn.Conv2d(channels, channels, 7, padding=3, groups=channels)
        self.norm = nn.LayerNorm(channels, eps=1e-6)
        self.fc1 = Linear(channels, 4 * channels)
        self.act = nn.GELU()
        self.fc2 = Linear(4 * channels, channels)
        self.gamma = nn.Parameter(torch.full((channels,), 1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv_dw(x).permute(0, 2, 3, 1)
        y = self.fc2(self.act(self.fc1(self.norm(y))))
        return x + stochastic_depth((y * self.gamma).permute(0, 3, 1, 2), 0.1, "row", self.training)


class TokenAttention(nn.Module):
    """A ViT/MobileViT transformer's attention: the map as tokens, multi-head
    ``F.scaled_dot_product_attention``, a projection, the residual."""

    def __init__(self, channels: int, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        qkv = self.qkv(self.norm(tokens)).reshape(b, h * w, 3, self.heads, c // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        y = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, h * w, c)
        return x + self.proj(y).transpose(1, 2).reshape(b, c, h, w)


class Head(nn.Module):
    def __init__(self, channels: int, classes: int = 10) -> None:
        super().__init__()
        self.norm = LayerNorm2d(channels)
        self.fc = Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(x).mean((2, 3)))


class ZooReplica(nn.Module):
    """Every pattern above in one small network (16×16 inputs)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), BatchNormAct2d(16))
        self.block1 = BasicBlockD(16, 24, 2)
        self.ghost = GhostModuleV2(24, 24)
        self.mbconv = MBConv(24)
        self.convnext = ConvNeXtBlock(24)
        self.attention = TokenAttention(24)
        self.gn = nn.GroupNorm(4, 24)
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.act = nn.Tanh()
        self.head = Head(24)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attention(self.convnext(self.mbconv(self.ghost(self.block1(self.stem(x))))))
        x = F.avg_pool2d(self.up(self.act(self.gn(x))), 2)
        return self.head(F.gelu(x, approximate="tanh"))


class MobileViTBlock(nn.Module):
    """MobileViT's block: local convolutions, the map cut into p×p patches (resized first when
    its side is not a multiple of p: a branch on the map's size), attention across patches at
    each pixel offset, folded back, resized back, fused with the input."""

    def __init__(self, channels: int, patch: int = 2) -> None:
        super().__init__()
        self.patch = patch
        self.local = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), BatchNormAct2d(channels)
        )
        self.attention = TokenAttention(channels)
        self.fusion = nn.Conv2d(2 * channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut, p = x, self.patch
        x = self.local(x)
        b, c, h, w = x.shape
        rows, columns = math.ceil(h / p), math.ceil(w / p)
        resized = rows * p != h or columns * p != w
        if resized:
            x = F.interpolate(x, size=(rows * p, columns * p), mode="bilinear", align_corners=False)
        # patches: (b·p·p) sequences of rows·columns tokens, one per offset inside a patch
        x = (
            x.reshape(b, c, rows, p, columns, p)
            .permute(0, 3, 5, 1, 2, 4)
            .reshape(b * p * p, c, rows, columns)
        )
        x = self.attention(x)
        x = (
            x.reshape(b, p, p, c, rows, columns)
            .permute(0, 3, 4, 1, 5, 2)
            .reshape(b, c, rows * p, columns * p)
        )
        if resized:
            x = F.interpolate(x, size=(h, w), mode="nearest")
        return self.fusion(torch.cat((shortcut, x), dim=1))


class Conv2dSame(nn.Conv2d):
    """timm's Conv2dSame: TensorFlow's "SAME" padding computed from the input's size, then
    ``F.conv2d`` called by the subclass."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, kernel, stride in zip(x.shape[-2:], self.weight.shape[-2:], self.stride, strict=True):
            pads.append(max((math.ceil(size / stride) - 1) * stride + kernel - size, 0))
        if any(pads):
            x = F.pad(x, [pads[1] // 2, pads[1] - pads[1] // 2, pads[0] // 2, pads[0] - pads[0] // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class LinearSelfAttention(nn.Module):
    """MobileViTv2's separable attention on B×C×P×N patches: one score per token (a softmax over
    the tokens), a context vector summed over the tokens, broadcast back."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.qkv = nn.Conv2d(channels, 1 + 2 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        query, key, value = self.qkv(x).split([1, self.channels, self.channels], dim=1)
        scores = F.softmax(query, dim=-1)
        context = (key * scores).sum(dim=-1, keepdim=True)
        return self.out(F.relu(value) * context.expand_as(value))


class EinsumAttention(nn.Module):
    """EfficientViT-M's attention written with ``torch.einsum`` over a few pooled tokens."""

    def __init__(self, channels: int, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(channels, 3 * channels)
        self.act = nn.LeakyReLU(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(x.flatten(2).transpose(1, 2)).reshape(b, h * w, 3, self.heads, -1).unbind(2)
        weights = torch.einsum("bnhd,bmhd->bhnm", q, k).softmax(dim=-1)
        y = torch.einsum("bhnm,bmhd->bnhd", weights, v).reshape(b, h * w, c)
        return self.act(y.transpose(1, 2).reshape(b, c, h, w).contiguous())


class MultiQueryAttention(nn.Module):
    """MobileNetV4-hybrid's multi-query attention (one key/value head broadcast over the query
    heads: torch's math fallback) with TinyViT's additive position bias as a 4-D mask (the
    fused kernel)."""

    def __init__(self, channels: int, heads: int = 3) -> None:
        super().__init__()
        self.heads, self.width = heads, channels // heads
        self.query = nn.Conv2d(channels, channels, 1, bias=False)
        self.key_value = nn.Conv2d(channels, 2 * self.width, 1, bias=False)
        self.bias = nn.Parameter(torch.zeros(1, heads, 4, 4))
        self.register_buffer("index", torch.arange(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.query(x).reshape(b, self.heads, self.width, h * w).transpose(-1, -2)
        k, v = self.key_value(x).reshape(b, 1, 2 * self.width, h * w).transpose(-1, -2).chunk(2, dim=-1)
        shared = F.scaled_dot_product_attention(q, k, v)  # heads broadcast: the math fallback
        bias = self.bias[:, :, self.index]  # gathered, as TinyViT does: a copy, so no grad: fused
        grouped = F.scaled_dot_product_attention(q, q, q, attn_mask=bias)
        return x + (shared + grouped).transpose(-1, -2).reshape(b, c, h, w)


class CrossCovarianceAttention(nn.Module):
    """XCiT's and EdgeNeXt's pieces: a sin/cos position encoding built from a cumulative sum over
    a mask (``torch.zeros``, ``~``, ``cumsum``, ``arange``, ``repeat``), L2-normalized queries and
    keys (``F.normalize``), a learned temperature, and a few reductions and element-wise
    functions (a plain LayerNorm, ``log_softmax``, ``var``, ``exp``, ``sqrt``, ``clamp``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.position = nn.Conv2d(4, channels, 1)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.temperature = nn.Parameter(torch.ones(1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        empty = torch.zeros(b, h, w, dtype=torch.bool, device=x.device)
        rows = (~empty).cumsum(1, dtype=torch.float32)
        steps = torch.arange(2, dtype=torch.float32, device=x.device)
        angles = rows[..., None] / (10.0**steps)
        encoding = torch.cat((angles.sin(), angles.cos()), dim=-1).permute(0, 3, 1, 2)
        x = x + self.position(encoding.repeat(1, 1, 1, 1))
        q, k, v = self.qkv(x).flatten(2).chunk(3, dim=1)
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        weights = (q @ k.transpose(-2, -1) * self.temperature).log_softmax(dim=-1).exp()
        y = (weights @ v).reshape(b, c, h, w)
        spread = y.var(dim=1, keepdim=True).clamp(min=1e-6).sqrt()
        return F.layer_norm(y / spread, (w,))


class MobileViTReplica(nn.Module):
    """MobileViT's block, then MobileViTv2's linear attention over its patches, then a few pooled
    tokens through einsum attention."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(Conv2dSame(3, 12, 3, 2, bias=False), BatchNormAct2d(12, nn.LeakyReLU))
        self.block = MobileViTBlock(12)
        self.linear_attention = LinearSelfAttention(12)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.tokens = EinsumAttention(12)
        self.multi_query = MultiQueryAttention(12)
        self.cross_covariance = CrossCovarianceAttention(12)
        self.head = Head(12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block(self.stem(x))
        b, c, h, w = x.shape
        x = self.linear_attention(x.reshape(b, c, 1, h * w)).reshape(b, c, h, w)
        x = self.multi_query(self.tokens(self.pool(x)) + F.adaptive_avg_pool2d(x, (2, 2)))
        return self.head(self.cross_covariance(x))


class ValueDependent(nn.Module):
    """A branch on the data (a clamp applied only when a value is large): one trace cannot
    stand for every input, so it is refused."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return x.clamp(-1, 1) if x.abs().amax() > 10 else x


def zoo_replica() -> nn.Module:
    return ZooReplica()


def mobilevit_replica() -> nn.Module:
    return MobileViTReplica()


def value_dependent() -> nn.Module:
    return nn.Sequential(nn.Identity(), ValueDependent())
