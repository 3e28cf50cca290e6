"""The attention-overhead table (every module's params and MACs, the ULSAM paper's Table 1) at
each feature-map shape where the study placed a module, with ULSAM at every g used there."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pandas as pd

from ulsam_nas.attention import get_attention, list_attention
from ulsam_nas.errors import InvalidInput
from ulsam_nas.networks.plan import REMOVE, parse_plan
from ulsam_nas.output import render_frame
from ulsam_nas.reporting.data import StudyData
from ulsam_nas.search.network import network_of_attrs
from ulsam_nas.tables import OverheadTable, overhead_table


@dataclass(frozen=True)
class PlacedShape:
    channels: int
    height: int
    width: int
    where: tuple[str, ...]  # e.g. "α0.25 after layer 12"
    groups: tuple[int, ...]  # ULSAM's g values used at this shape

    @property
    def text(self) -> str:
        return f"{self.channels}×{self.height}×{self.width}"


def placed_shapes(data: StudyData) -> list[PlacedShape]:
    """The (channels, height, width) of every module slot among the trained candidates."""
    found: dict[tuple[int, int, int], tuple[dict[str, None], set[int]]] = {}
    for _, row in data.points.drop_duplicates("candidate").iterrows():
        network = network_of_attrs(row["backbone"], data.network).at(float(row["width_mult"]))
        for placement in parse_plan(row["plan"]):
            if placement.module == REMOVE:
                continue
            shape = network.module_shape(placement.index, placement.action)
            where, groups = found.setdefault(shape, ({}, set()))
            verb = {"insert": "after", "replace": "replacing", "swap": "for the SE of"}[placement.action]
            where[f"α{row['width_mult']:g} {verb} {network.where(placement.index)}"] = None
            if "groups" in placement.config:
                groups.add(int(placement.config["groups"]))
    return [
        PlacedShape(c, h, w, tuple(sorted(where)), tuple(sorted(groups)))
        for (c, h, w), (where, groups) in sorted(found.items(), reverse=True)
    ]


def overhead_tables(data: StudyData) -> list[tuple[PlacedShape, OverheadTable]]:
    convention = data.config.budget.convention
    tables = []
    for shape in placed_shapes(data):
        groups = shape.groups or (4,)
        modules, left_out = _buildable(shape, groups[0])
        table = overhead_table(
            shape.channels,
            shape.height,
            shape.width,
            groups=groups[0] if "ulsam" in modules else None,
            convention=convention,
            modules=modules,
        )
        table = dataclasses.replace(table, notes=[*table.notes, *left_out])
        rows = [
            dataclasses.replace(r, title=f"{r.title} (g={groups[0]})") if r.module == "ulsam" else r
            for r in table.rows
        ]
        for g in groups[1:] if "ulsam" in modules else ():
            extra = overhead_table(
                shape.channels, shape.height, shape.width, groups=g, convention=convention, modules=["ulsam"]
            ).rows[0]
            reference = next(r for r in rows if r.module == "ulsam")
            rows.append(
                dataclasses.replace(
                    extra,
                    title=f"{extra.title} (g={g})",
                    params_norm=extra.params / reference.params,
                    macs_norm=extra.macs / reference.macs,
                )
            )
        tables.append((shape, dataclasses.replace(table, rows=rows)))
    return tables


def _buildable(shape: PlacedShape, groups: int) -> tuple[list[str], list[str]]:
    """The modules that can be built at a shape at their defaults (ULSAM at ``groups``), and a
    note for each that cannot (a narrow map: SE's reduction 16 above 10 channels, say)."""
    modules, notes = [], []
    for key in list_attention():
        spec = get_attention(key)
        options = {"groups": groups} if "groups" in spec.option_names() else {}
        try:
            spec.resolved_options(shape.channels, shape.height, shape.width, **options)
        except InvalidInput as error:
            notes.append(f"{key} is left out at {shape.text}: {error}")
            continue
        modules.append(key)
    return modules, notes


def overhead_frame(tables: list[tuple[PlacedShape, OverheadTable]]) -> pd.DataFrame:
    """Every shape's table in one frame (integers without separators), for CSV."""
    frames = [
        table.to_frame(thousands=False).assign(
            **{"Shape (m×h×w)": shape.text, "Placed": "; ".join(shape.where)}
        )
        for shape, table in tables
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def overhead_markdown(tables: list[tuple[PlacedShape, OverheadTable]]) -> str:
    sections = []
    for shape, table in tables:
        heading = f"## {shape.text}: {', '.join(shape.where)}\n\n"
        sections.append(heading + render_frame(table.to_frame(), "markdown", table.notes))
    return "# Attention overhead at the placed shapes\n\n" + "\n".join(sections)
