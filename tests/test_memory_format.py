"""Every module and backbone gives the same output for NHWC (``channels_last``) input as for
contiguous input: no ``.view`` where a tensor may be strided."""

from __future__ import annotations

import pytest
import torch

from ulsam_nas import create_attention, create_network
from ulsam_nas.attention import list_attention


@pytest.mark.parametrize("key", list_attention())
@pytest.mark.parametrize(("channels", "height", "width"), [(32, 7, 5), (64, 8, 8)])
def test_every_module_is_the_same_in_channels_last(key, channels, height, width):
    torch.manual_seed(0)
    module = create_attention(key, channels).eval()
    x = torch.randn(2, channels, height, width)
    nhwc = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        expected = module(x)
        assert torch.allclose(module(nhwc), expected, atol=1e-5)
        module_nhwc = module.to(memory_format=torch.channels_last)
        assert torch.allclose(module_nhwc(nhwc), expected, atol=1e-5)


@pytest.mark.parametrize("backbone", ["mobilenet_v1", "mobilenet_v2"])
def test_backbones_with_every_module_are_the_same_in_channels_last(backbone):
    plans = {"mobilenet_v1": "replace@9:ulsam:groups=4,insert@12:{key}", "mobilenet_v2": "insert@12:{key}"}
    for key in list_attention():
        plan = (
            plans[backbone].format(key=key)
            if key != "ulsam"
            else plans[backbone].format(key="ulsam:groups=8")
        )
        torch.manual_seed(0)
        model = create_network(backbone, 0.5, plan, resolution=32, num_classes=10, stem="small").eval()
        x = torch.randn(2, 3, 32, 32)
        with torch.no_grad():
            expected = model(x)
            nhwc = model.to(memory_format=torch.channels_last)(
                x.contiguous(memory_format=torch.channels_last)
            )
        assert torch.allclose(nhwc, expected, atol=1e-4), key
