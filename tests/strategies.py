"""Hypothesis strategies: a random (channels, height, width, config) for each attention module.

Configs come from each registry entry's own ``sample_config`` (driven by a Hypothesis-controlled
Random), the same sampler ``ulsam-nas verify`` uses, so a new module is covered automatically.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from ulsam_nas.attention import get_attention

MAX_CHANNELS = 256
MAX_SIDE = 32


@st.composite
def module_case(draw: st.DrawFn, name: str, max_side: int = MAX_SIDE) -> tuple[int, int, int, dict[str, Any]]:
    """(channels, height, width, config) valid for module ``name``; odd and non-square sizes."""
    m = draw(st.integers(2, MAX_CHANNELS))
    config = get_attention(name).sample_config(draw(st.randoms(use_true_random=False)), m)
    low = 2 if config.get("subsample") else 1
    h = draw(st.integers(low, max_side))
    w = draw(st.integers(low, max_side))
    return m, h, w, config
