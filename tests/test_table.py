import json

import pytest

from ulsam_nas.errors import InvalidInput
from ulsam_nas.latex import latex_text
from ulsam_nas.output import render_frame
from ulsam_nas.tables import format_scaled, overhead_table

# The ULSAM paper's Table 1 (m = 512, h = w = 14, r = 16, t = 64): params ×10³ / FLOPs ×10⁶ and
# FLOPs normalized to ULSAM.
PAPER = {
    "Non-local": ("524", "102.76", "512"),
    "A²-Net": ("66", "12.85", "64"),
    "SE": ("33", "0.03", "0.16"),
    "BAM": ("84", "16.49", "82.16"),
    "CBAM": ("33", "0.05", "0.26"),
    "ULSAM": ("1", "0.2", "1"),
}
PARAMS_NORM = {"Non-local": "512", "A²-Net": "64", "SE": "32", "BAM": "82", "CBAM": "32.1", "ULSAM": "1"}


def test_default_table_reproduces_the_paper():
    frame = overhead_table().to_frame()
    got = {
        row["Module"]: (row["Params (×10³)"], row["FLOPs (×10⁶)"], row["FLOPs norm. (×)"])
        for _, row in frame.iterrows()
    }
    assert got == PAPER
    assert dict(zip(frame["Module"], frame["Params norm. (×)"], strict=True)) == PARAMS_NORM


def test_default_table_prints_the_papers_formulas():
    rows = {r.module: (r.params_formula, r.macs_formula) for r in overhead_table().rows}
    assert rows == {
        "non_local": ("2m²", "2m²hw"),
        "a2": ("2mt", "2mthw"),
        "se": ("2m²/r", "2m²/r"),
        "bam": ("4m²/r + 18m²/r²", "2m²/r + 4m²hw/r + 18m²hw/r²"),
        "cbam": ("2m²/r + 98", "2m²/r + 98hw"),
        "ulsam": ("2m", "2mhw"),
    }


def test_json_document_has_the_documented_keys_and_integers():
    doc = json.loads(json.dumps(overhead_table().to_json()))
    assert doc["unit"] == "MAC" and doc["convention"] == "paper"
    assert doc["shape"] == {"channels": 512, "height": 14, "width": 14}
    se = next(r for r in doc["rows"] if r["module"] == "se")
    assert {
        "module",
        "params",
        "flops",
        "params_formula",
        "flops_formula",
        "params_norm",
        "flops_norm",
        "params_exact",
        "macs_exact",
    } <= set(se)
    assert (se["params"], se["flops"], se["params_exact"], se["macs_exact"]) == (32768, 32768, 33312, 32768)
    assert se["params_norm"] == 32.0 and se["flops_norm"] == 0.163
    assert all(isinstance(r[k], int) for r in doc["rows"] for k in ("params", "flops", "params_exact"))


def test_exact_convention_uses_the_real_counts_and_names_derived_widths():
    table = overhead_table(channels=100, convention="exact")
    se = next(r for r in table.rows if r.module == "se")
    assert (se.params, se.params_formula) == (2 * 100 * 6 + 6 + 100, "2mc + c + m")
    assert any("c = max(1, ⌊m/r⌋)" in note for note in table.notes)


@pytest.mark.parametrize("fmt", ["markdown", "csv", "latex"])
def test_every_format_renders_every_module(fmt):
    table = overhead_table()
    text = render_frame(table.to_frame(), fmt, table.notes)
    for title in PAPER:
        assert (latex_text(title) if fmt == "latex" else title) in text


def test_all_modules_sorted_by_macs_and_the_default_stays_the_paper_s():
    assert [r.module for r in overhead_table().rows] == ["non_local", "a2", "se", "bam", "cbam", "ulsam"]
    rows = overhead_table(modules=["all"], sort="macs").rows
    assert len(rows) == 11 and [r.macs for r in rows] == sorted(r.macs for r in rows)
    assert [r.module for r in rows[:2]] == ["simam", "eca"]
    picked = overhead_table(modules=["eca,coord", "se"], sort="params").rows
    assert [r.module for r in picked] == ["eca", "ca", "se"]  # paper params 5, 24,576, 32,768


def test_each_module_keeps_its_own_default_unless_an_option_is_given():
    rows = {r.module: r for r in overhead_table(modules=["se", "ca"]).rows}
    assert rows["se"].config == {"reduction": 16} and rows["ca"].config == {"reduction": 32}
    rows = {r.module: r for r in overhead_table(modules=["se", "ca"], reduction=8).rows}
    assert rows["se"].config == {"reduction": 8} and rows["ca"].config == {"reduction": 8}


@pytest.mark.parametrize(
    ("value", "whole", "text"),
    [
        (524.288, True, "524"),
        (0.200704, False, "0.2"),
        (102.760448, False, "102.76"),
        (0.002400, False, "0.0024"),
        (0.4, True, "0.4"),
        (0.0, False, "0"),
    ],
)
def test_short_number_format(value, whole, text):
    assert format_scaled(value, whole) == text


def test_an_option_no_module_has_is_refused_naming_it():
    with pytest.raises(InvalidInput, match="unknown option 'reductoin'"):
        overhead_table(reductoin=8)
