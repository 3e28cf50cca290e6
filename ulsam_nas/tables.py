"""The ULSAM paper's overhead table (params and FLOPs of its six attention modules, or of any
registered ones) for any shape."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from ulsam_nas.attention import PAPER_MODULES, get_attention, list_attention
from ulsam_nas.attention._common import number_text
from ulsam_nas.attention.registry import check_shape
from ulsam_nas.cost.compose import check_convention
from ulsam_nas.cost.cost import formula_of
from ulsam_nas.cost.training import torch_training_flops
from ulsam_nas.errors import InvalidInput

REFERENCE = "ulsam"  # the normalized columns divide by this module's counts


@dataclass(frozen=True)
class OverheadRow:
    module: str
    title: str
    uses_subspace: bool
    uses_mlp: bool
    uses_conv1x1: bool
    params: int
    macs: int
    params_formula: str
    macs_formula: str
    params_norm: float | None  # None: ULSAM, the yardstick, cannot be built at this shape
    macs_norm: float | None
    params_exact: int
    macs_exact: int
    config: dict[str, Any]
    train_macs_exact: int  # one training step (forward and backward products), exact convention
    train_torch_flops: int  # what torch's FlopCounterMode counts for that step


@dataclass(frozen=True)
class OverheadTable:
    channels: int
    height: int
    width: int
    convention: str
    rows: list[OverheadRow]
    notes: list[str] = field(default_factory=list)
    # What each module adds to a network's latency at this shape (ms, by module), and where that
    # was measured: given by the caller (``ulsam-nas table --latency``), measured, not derived.
    latency_ms: dict[str, float] | None = None
    latency_where: dict[str, Any] | None = None
    train: bool = False  # show the training-step columns

    def with_training(self) -> OverheadTable:
        """The table with each module's training-step MACs (exact) and torch's count of them."""
        note = (
            "Training step: the module's forward and backward products (its input's and its "
            "weights' gradients, as many MACs each as the product they differentiate) in the exact "
            "convention, its input needing a gradient as inside a network; torch's FlopCounterMode "
            "counts 2 FLOPs per MAC and a grouped convolution's weight gradient as if it were dense "
            "(groups × its MACs: ULSAM's and any depthwise layer's), so its column runs higher."
        )
        return replace(self, train=True, notes=[*self.notes, note])

    def with_latency(self, latency_ms: dict[str, float], where: dict[str, Any], note: str) -> OverheadTable:
        """The table with a latency column (``note`` says what it means and where it comes from)."""
        return replace(self, latency_ms=latency_ms, latency_where=where, notes=[*self.notes, note])

    def to_frame(self, thousands: bool = True) -> pd.DataFrame:
        """The table as the paper lays it out; the last two columns give the integers (with
        thousands separators unless ``thousands=False``, e.g. for CSV)."""

        def mark(flag: bool) -> str:
            return "✓" if flag else "✗"

        flops = "FLOPs"
        return pd.DataFrame(
            [
                {
                    "Module": r.title,
                    "Subspace attention": mark(r.uses_subspace),
                    "MLP": mark(r.uses_mlp),
                    "1×1 conv": mark(r.uses_conv1x1),
                    "Params formula": r.params_formula,
                    f"{flops} formula": r.macs_formula,
                    "Params (×10³)": format_scaled(r.params / 1e3, whole=True),
                    f"{flops} (×10⁶)": format_scaled(r.macs / 1e6),
                    "Params norm. (×)": _scaled_or_none(r.params_norm),
                    f"{flops} norm. (×)": _scaled_or_none(r.macs_norm),
                    "Params": f"{r.params:,}" if thousands else r.params,
                    "FLOPs (MAC)": f"{r.macs:,}" if thousands else r.macs,
                    **(
                        {}
                        if not self.train
                        else {
                            "Train step (MAC)": f"{r.train_macs_exact:,}"
                            if thousands
                            else r.train_macs_exact,
                            "torch train (FLOP)": f"{r.train_torch_flops:,}"
                            if thousands
                            else r.train_torch_flops,
                        }
                    ),
                    **(
                        {}
                        if self.latency_ms is None
                        else {"Latency (ms)": f"{self.latency_ms[r.module]:.4f}"}
                    ),
                }
                for r in self.rows
            ]
        ).dropna(axis="columns", how="all")

    def to_json(self) -> dict[str, Any]:
        return {
            "shape": {"channels": self.channels, "height": self.height, "width": self.width},
            "convention": self.convention,
            "unit": "MAC",
            "rows": [
                {
                    "module": r.module,
                    "title": r.title,
                    "config": r.config,
                    "uses_subspace": r.uses_subspace,
                    "uses_mlp": r.uses_mlp,
                    "uses_conv1x1": r.uses_conv1x1,
                    "params": r.params,
                    "flops": r.macs,
                    "params_formula": r.params_formula,
                    "flops_formula": r.macs_formula,
                    "params_norm": None if r.params_norm is None else round(r.params_norm, 3),
                    "flops_norm": None if r.macs_norm is None else round(r.macs_norm, 3),
                    "params_exact": r.params_exact,
                    "macs_exact": r.macs_exact,
                    "train_macs_exact": r.train_macs_exact,
                    "train_torch_flops": r.train_torch_flops,
                    **({} if self.latency_ms is None else {"latency_ms": self.latency_ms[r.module]}),
                }
                for r in self.rows
            ],
            **({} if self.latency_where is None else {"latency": self.latency_where}),
            "notes": self.notes,
        }


def _known(value: int | None) -> int:
    assert value is not None  # an exact module cost always has its backward
    return value


def _scaled_or_none(value: float | None) -> str | None:
    return None if value is None else format_scaled(value)


def format_scaled(value: float, whole: bool = False) -> str:
    """Paper-style short numbers: 102.76, 0.2, 524; never a bare 0 for a non-zero value."""
    text = f"{value:.0f}" if whole and value >= 1 else f"{value:.2f}".rstrip("0").rstrip(".")
    if text in ("0", "-0") and value != 0:
        text = f"{value:.2g}"
    return text


def resolve_modules(names: list[str] | None) -> list[str]:
    """Registry keys for ``--modules`` values: keys, timm aliases, comma lists, ``paper`` (the
    ULSAM paper's six, the default) and ``all``; duplicates dropped, order kept."""
    if not names:
        return list(PAPER_MODULES)
    keys: list[str] = []
    for name in (part.strip() for value in names for part in value.split(",")):
        if not name:
            continue
        group = {"all": list_attention(), "paper": list(PAPER_MODULES)}.get(name)
        for key in group or [get_attention(name).key]:
            if key not in keys:
                keys.append(key)
    if not keys:
        raise InvalidInput(
            f"--modules {' '.join(names)!r} names no module; allowed: all, paper or module keys"
        )
    return keys


SORT_KEYS = ("macs", "params")


def overhead_table(
    channels: int = 512,
    height: int = 14,
    width: int = 14,
    convention: str = "paper",
    modules: list[str] | None = None,
    sort: str | None = None,
    **options: Any,
) -> OverheadTable:
    """Params and MACs of each attention module at one feature-map shape (the ULSAM paper's
    Table 1 at the defaults), with formulas and ULSAM-normalized columns.  ``options`` (e.g.
    ``reduction=8``) go to every listed module that has them; the others keep their defaults.
    ``sort``: "macs" or "params", ascending (default: registry order)."""
    check_shape(channels, height, width)
    check_convention(convention)
    if sort is not None and sort not in SORT_KEYS:
        raise InvalidInput(f"sort={sort!r} is unknown; allowed: {', '.join(SORT_KEYS)}")
    given = {k: v for k, v in options.items() if v is not None}
    listed = resolve_modules(modules)
    known = {name for key in list_attention() for name in get_attention(key).option_names()}
    unknown = sorted(set(given) - known)
    if unknown:
        raise InvalidInput(f"unknown option {unknown[0]!r}; valid options: {', '.join(sorted(known))}")
    for name, value in given.items():  # the same rule for every option: some listed module takes it
        takers = [key for key in list_attention() if name in get_attention(key).option_names()]
        if not set(takers) & set(listed):
            raise InvalidInput(
                f"{name}={number_text(value)} applies to none of the listed modules "
                f"({', '.join(listed)}); it is an option of {', '.join(takers)}"
            )
    measured = {key: _measure(key, channels, height, width, convention, given) for key in listed}
    reference = measured.get(REFERENCE)
    notes_extra = []
    if reference is None:
        # ULSAM is only the yardstick here: computed at its defaults, never validated against the
        # user's flags; where it cannot be built the normalized columns are left out.
        try:
            reference = _measure(REFERENCE, channels, height, width, convention, {})
        except InvalidInput as error:
            notes_extra.append(
                f"Normalized columns are left out: ULSAM, the module they divide by, cannot be built "
                f"at m={channels}, h×w={height}×{width} ({error}); list ulsam with a valid --groups "
                "to normalise by it."
            )
    ref_params = ref_macs = None
    if reference is not None:
        ref_params, ref_macs = int(reference[2].params), int(reference[2].macs)
    ideal = convention == "paper"
    rows = []
    for key in listed:
        spec, config, formula, exact = measured[key]
        params, macs = int(formula.params), int(formula.macs)
        rows.append(
            OverheadRow(
                module=key,
                title=spec.title,
                uses_subspace=spec.uses_subspace,
                uses_mlp=spec.uses_mlp,
                uses_conv1x1=spec.uses_conv1x1,
                params=params,
                macs=macs,
                params_formula=formula.params_text(ideal),
                macs_formula=formula.macs_text(ideal),
                params_norm=None if ref_params is None else params / ref_params,
                macs_norm=None if ref_macs is None else macs / ref_macs,
                params_exact=exact.params,
                macs_exact=exact.macs,
                config={f: getattr(config, f) for f in spec.option_names()},
                train_macs_exact=_known(exact.train_macs),
                train_torch_flops=_known(torch_training_flops(exact)),
            )
        )
    if sort is not None:
        rows.sort(key=lambda r: r.macs if sort == "macs" else r.params)
    notes = _notes(convention, rows, measured, normalized=reference is not None) + notes_extra
    return OverheadTable(channels, height, width, convention, rows, notes)


def _measure(
    key: str, channels: int, height: int, width: int, convention: str, given: dict[str, Any]
) -> tuple[Any, Any, Any, Any]:
    """(spec, config, formula, exact cost) of one module with the options it takes from ``given``."""
    spec = get_attention(key)
    options = {k: v for k, v in given.items() if k in spec.option_names()}
    config = spec.make_config(channels, **options)
    spec.validate(config, options, channels, height, width)
    terms = spec.terms(channels, height, width, config, convention, symbolic=True)
    exact = spec.terms(channels, height, width, config, "exact").evaluate("exact")
    return spec, config, formula_of(terms), exact


def _notes(convention: str, rows: list[OverheadRow], measured: dict[str, Any], normalized: bool) -> list[str]:
    notes = [
        "FLOPs are multiply-accumulates (MACs), as the ULSAM paper counts them. Symbols: m channels, "
        "h×w feature map, r reduction, t A²-Net inner channels, g ULSAM groups, k kernel size (ECA, "
        "Triplet), p GC planes, d Coordinate Attention's width.",
        "Options: "
        + "; ".join(
            f"{r.title} {', '.join(f'{k}={number_text(v)}' for k, v in r.config.items())}"
            for r in rows
            if r.config
        )
        + ".",
    ]
    if convention == "paper":
        notes.append(
            "Paper convention: each module counted as the ULSAM paper counts it. "
            + " ".join(f"{measured[r.module][0].title} {measured[r.module][0].paper_note}." for r in rows)
            + " The exact counts of the real modules are in JSON (params_exact, macs_exact) and "
            "under --convention exact."
        )
        notes.append(
            "Formulas are written as the paper writes them: m/r stands for the integer reduced width "
            "max(1, ⌊m/r⌋) and m/2 for ⌊m/2⌋, so a formula equals its number exactly when the "
            "divisions are exact; the numbers always use the integer widths the modules build."
        )
    else:
        wheres = dict.fromkeys(item for r in rows for item in measured[r.module][2].where_items())
        notes.append(
            "Exact convention: every parameter (weights, biases, BatchNorm γ and β) and every "
            "multiply-accumulate of conv, linear and matmul layers (bias additions excluded)."
            + (f" Where {'; '.join(wheres)}." if wheres else "")
        )
    if normalized:
        notes.append(
            "Normalized columns divide the unrounded counts by ULSAM's. The paper divides its rounded "
            "figures: at 512×14×14 it prints 33× for the params of SE and CBAM, where the unrounded "
            "counts give 32× and 32.1×."
        )
    return notes
