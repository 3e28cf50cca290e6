"""Shared look of the report's figures (marker colour by group count g) and their encoding.

Figures are built on ``matplotlib.figure.Figure`` directly, never through pyplot, so nothing
depends on a display or on pyplot's global state."""

from __future__ import annotations

import io
from collections.abc import Iterable

import matplotlib
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

VANILLA_COLOUR = "black"
MIXED_COLOUR = "#8c6d31"  # modules with different g in one plan
GREY = "#b0b0b0"  # over-budget and pruned trials
_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#17becf", "#e377c2", "#bcbd22"]


class GroupColours:
    """One colour per group count g, the same in every figure of a report."""

    def __init__(self, groups: Iterable[int]) -> None:
        self.groups = sorted(set(groups))
        self._colour = {g: _PALETTE[i % len(_PALETTE)] for i, g in enumerate(self.groups)}

    def colour(self, groups: int | None, vanilla: bool) -> str:
        if vanilla:
            return VANILLA_COLOUR
        return MIXED_COLOUR if groups is None else self._colour[groups]

    def legend_handles(self, mixed: bool) -> list[Line2D]:
        handles = [legend_marker(self._colour[g], "o", f"g={g}") for g in self.groups]
        if mixed:
            handles.append(legend_marker(MIXED_COLOUR, "D", "mixed g"))
        return [*handles, legend_marker(VANILLA_COLOUR, "s", "vanilla (no module)")]


def legend_marker(colour: str, marker: str, label: str, **extra: object) -> Line2D:
    """A legend entry for points drawn with ``marker`` in ``colour``."""
    return Line2D([], [], color=colour, marker=marker, linestyle="none", label=label, **extra)  # type: ignore[arg-type]


def encode(figure: Figure) -> dict[str, bytes]:
    """The figure as PNG and SVG bytes; no creation date in either, so a rerun on the same
    study writes the same files."""
    encoded = {}
    for fmt, metadata in (("png", {"Software": None}), ("svg", {"Date": None})):
        buffer = io.BytesIO()
        with matplotlib.rc_context({"svg.hashsalt": "ulsam-nas"}):  # SVG element ids, else random
            figure.savefig(buffer, format=fmt, dpi=110, metadata=metadata, bbox_inches="tight")
        encoded[fmt] = buffer.getvalue()
    return encoded
