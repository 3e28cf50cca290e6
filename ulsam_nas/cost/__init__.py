"""Closed-form cost model: the Cost record, shared layer primitives and symbolic formulas."""

from ulsam_nas.cost.cost import CONVENTIONS, OP_UNITS, Cost, Formula, Terms, formula_of
from ulsam_nas.cost.symbolic import Num, Poly

__all__ = ["CONVENTIONS", "OP_UNITS", "Cost", "Formula", "Num", "Poly", "Terms", "formula_of"]
