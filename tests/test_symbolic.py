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
    c = derived("c", lambda a, b: a // b, [m, r], "⌊m/r⌋", ideal=ratio(m, r))
    expr = 2 * m * c
    assert int(expr) == 2 * 100 * 6  # the integer width, not 2·100²/16
    assert expr.text() == "2mc"
    assert expr.text(ideal=True) == "2m²/r"


def test_exact_derived_atom_is_substituted_in_exact_text():
    m, g = Poly.symbol("m", 12), Poly.symbol("g", 3)
    per_group = derived("G", lambda a, b: a // b, [m, g], "m/g", ideal=ratio(m, g), exact=True)
    assert (g * per_group).text() == "m"


def test_derived_on_plain_ints_returns_the_value():
    assert derived("c", lambda a, b: a // b, [100, 16], "⌊m/r⌋", ideal=ratio(100, 16)) == 6
    assert ratio(3, 2) is None


def test_non_integer_value_is_refused():
    m = Poly.symbol("m", 3)
    with pytest.raises(ValueError, match="not an integer"):
        int(m / 2)


def test_compiled_cost_computes_derived_widths_with_their_own_function():
    from ulsam_nas.cost.cost import compile_cost
    from ulsam_nas.cost.primitives import linear

    m, r = Poly.symbol("m", 2), Poly.symbol("r", 2)
    c = derived("c", lambda a, b: max(1, a // b), [m, r], "max(1, ⌊m/r⌋)")
    compiled = compile_cost(["m", "r"], linear(m, c, bias=True), "exact")
    cost = compiled(100, 16)
    assert (cost.params, cost.macs) == (100 * 6 + 6, 100 * 6)
    assert compiled(3, 16).params == 3 * 1 + 1  # max(1, ⌊3/16⌋) = 1
