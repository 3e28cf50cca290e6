"""Hypothesis strategies: a random (channels, height, width, config) for each attention module."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from ulsam_nas.attention._common import divisors

MAX_CHANNELS = 256
MAX_SIDE = 32


@st.composite
def _reduction(draw: st.DrawFn, m: int) -> dict[str, Any]:
    return {"reduction": draw(st.integers(1, m) | st.sampled_from([r for r in (4, 8, 16) if r <= m] or [1]))}


@st.composite
def _a2(draw: st.DrawFn, m: int) -> dict[str, Any]:
    if draw(st.booleans()):
        return {"inner_channels": m, "reconstruct": draw(st.booleans())}
    return {"inner_channels": draw(st.none() | st.integers(1, 64))}


@st.composite
def _ulsam(draw: st.DrawFn, m: int) -> dict[str, Any]:
    return {"groups": draw(st.sampled_from(divisors(m)))}


@st.composite
def _non_local(draw: st.DrawFn, m: int) -> dict[str, Any]:
    return {"subsample": draw(st.booleans())}


CONFIGS = {
    "se": _reduction,
    "bam": _reduction,
    "cbam": _reduction,
    "a2": _a2,
    "ulsam": _ulsam,
    "non_local": _non_local,
}


@st.composite
def module_case(draw: st.DrawFn, name: str, max_side: int = MAX_SIDE) -> tuple[int, int, int, dict[str, Any]]:
    """(channels, height, width, config) valid for module ``name``; odd and non-square sizes."""
    m = draw(st.integers(2, MAX_CHANNELS))
    config = draw(CONFIGS[name](m))
    low = 2 if config.get("subsample") else 1
    h = draw(st.integers(low, max_side))
    w = draw(st.integers(low, max_side))
    return m, h, w, config
