import pytest

from ulsam_nas.cost.symbolic import Poly, derived, ratio


def test_polynomial_value_and_text_agree():
    m, h, w = Poly.symbol("m", 512), Poly.symbol("h", 14), Poly.symbol("w", 14)
    expr = 2 * m * h * w + m * m + 98
    assert int(expr) == 2 * 512 * 196 + 512 * 512 + 98
    assert expr.text() == "2mhw + m² + 98"


def test_like_terms_merge_and_zero_terms_vanish():
    m = Poly.symbol("m", 7)
    assert (m + m).text() == "2m"
    assert (m + (-1) * m).text() == "0"


def test_derived_atom_keeps_integer_value_and_ideal_text():
    m, r = Poly.symbol("m", 100), Poly.symbol("r", 16)
    c = derived("c", 100 // 16, [m, r], "⌊m/r⌋", ideal=ratio(m, r))
    expr = 2 * m * c
    assert int(expr) == 2 * 100 * 6  # the integer width, not 2·100²/16
    assert expr.text() == "2mc"
    assert expr.text(ideal=True) == "2m²/r"


def test_exact_derived_atom_is_substituted_in_exact_text():
    m, g = Poly.symbol("m", 12), Poly.symbol("g", 3)
    per_group = derived("G", 4, [m, g], "m/g", ideal=ratio(m, g), exact=True)
    assert (g * per_group).text() == "m"


def test_derived_on_plain_ints_returns_the_value():
    assert derived("c", 6, [100, 16], "⌊m/r⌋", ideal=ratio(100, 16)) == 6
    assert ratio(3, 2) is None


def test_non_integer_value_is_refused():
    m = Poly.symbol("m", 3)
    with pytest.raises(ValueError, match="not an integer"):
        int(m / 2)
