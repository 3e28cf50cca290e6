"""Integer polynomials that carry both a value and a printable formula.

A cost function written once with ``+`` and ``*`` runs on plain ``int`` arguments (fast numbers)
or on :class:`Poly` symbols (a formula whose value is the same number), so the text a user cites
and the number the tool prints come from one definition and cannot drift apart.

Derived widths such as the reduced width ``c = max(1, ⌊m/r⌋)`` are atoms of their own: their
value is the integer the module really uses, and their *ideal* form (``m/r``) is what the paper
prints.  ``Poly.text()`` writes the exact form with named atoms; ``Poly.text(ideal=True)``
substitutes the ideal forms, which equals the exact form whenever the divisions are exact.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

# An atom's exponent; negative exponents occur only in ideal (paper-style) forms such as m²/r.
Monomial = tuple[tuple[str, int], ...]

# Display order of atoms inside a monomial, so that formulas read like the papers: 2m²hw/r.
_ATOM_ORDER = ["k", "m", "t", "i", "c", "d", "p", "G", "g", "r", "h", "w", "h'", "w'"]
_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


@dataclass(frozen=True)
class Atom:
    """A named integer: a shape or config symbol, or a width derived from them."""

    name: str
    value: int
    definition: str | None = None  # e.g. "max(1, ⌊m/r⌋)"; None for free symbols
    ideal: Poly | None = None  # the paper's rational form, e.g. m/r
    exact: bool = False  # True when ideal always equals value (e.g. G = m/g with g | m)
    # How a derived width is computed from other atoms: compiled closed forms call it.
    function: Callable[..., int] | None = None
    inputs: tuple[str, ...] = ()


def _atom_key(name: str) -> tuple[int, str]:
    return (_ATOM_ORDER.index(name) if name in _ATOM_ORDER else len(_ATOM_ORDER), name)


def _mul_monomials(a: Monomial, b: Monomial) -> Monomial:
    powers: dict[str, int] = dict(a)
    for name, exp in b:
        powers[name] = powers.get(name, 0) + exp
    return tuple(sorted(((n, e) for n, e in powers.items() if e != 0), key=lambda p: _atom_key(p[0])))


class Poly:
    """A polynomial over :class:`Atom` s with rational coefficients (integers in exact forms)."""

    __slots__ = ("atoms", "terms")

    def __init__(self, terms: Mapping[Monomial, Fraction | int], atoms: Mapping[str, Atom]):
        self.terms: dict[Monomial, Fraction] = {
            mono: Fraction(coeff) for mono, coeff in terms.items() if coeff != 0
        }
        self.atoms: dict[str, Atom] = dict(atoms)

    @staticmethod
    def symbol(
        name: str,
        value: int,
        definition: str | None = None,
        ideal: Poly | None = None,
        exact: bool = False,
        function: Callable[..., int] | None = None,
        inputs: tuple[str, ...] = (),
    ) -> Poly:
        atom = Atom(name, value, definition, ideal, exact, function, inputs)
        return Poly({((name, 1),): 1}, {name: atom})

    @staticmethod
    def constant(value: int | Fraction) -> Poly:
        return Poly({(): value}, {})

    # -- arithmetic ------------------------------------------------------------------------
    def _coerce(self, other: object) -> Poly:
        if isinstance(other, Poly):
            return other
        if isinstance(other, (int, Fraction)):
            return Poly.constant(other)
        return NotImplemented

    def __add__(self, other: object) -> Poly:
        rhs = self._coerce(other)
        if rhs is NotImplemented:
            return NotImplemented
        terms = dict(self.terms)
        for mono, coeff in rhs.terms.items():
            terms[mono] = terms.get(mono, Fraction(0)) + coeff
        return Poly(terms, {**self.atoms, **rhs.atoms})

    __radd__ = __add__

    def __mul__(self, other: object) -> Poly:
        rhs = self._coerce(other)
        if rhs is NotImplemented:
            return NotImplemented
        terms: dict[Monomial, Fraction] = {}
        for mono_a, coeff_a in self.terms.items():
            for mono_b, coeff_b in rhs.terms.items():
                mono = _mul_monomials(mono_a, mono_b)
                terms[mono] = terms.get(mono, Fraction(0)) + coeff_a * coeff_b
        return Poly(terms, {**self.atoms, **rhs.atoms})

    __rmul__ = __mul__

    def __truediv__(self, other: object) -> Poly:
        """Divide by a constant or a single monomial (used only to write ideal forms)."""
        rhs = self._coerce(other)
        if rhs is NotImplemented:
            return NotImplemented
        if len(rhs.terms) != 1:
            raise ValueError("can only divide by a single monomial")
        ((mono, coeff),) = rhs.terms.items()
        inverse = Poly({tuple((n, -e) for n, e in mono): 1 / coeff}, rhs.atoms)
        return self * inverse

    # -- evaluation --------------------------------------------------------------------------
    def value(self) -> Fraction:
        total = Fraction(0)
        for mono, coeff in self.terms.items():
            term = coeff
            for name, exp in mono:
                term *= Fraction(self.atoms[name].value) ** exp
            total += term
        return total

    def __int__(self) -> int:
        value = self.value()
        if value.denominator != 1:
            raise ValueError(f"formula {self.text()} is not an integer: {value}")
        return int(value)

    def used_atoms(self) -> list[Atom]:
        names = {name for mono in self.terms for name, _ in mono}
        return [self.atoms[n] for n in sorted(names, key=_atom_key)]

    def idealized(self, only_exact: bool = False) -> Poly:
        """Replace derived atoms by their ideal forms (recursively); ``only_exact``: just the
        atoms whose ideal form always equals their value."""
        result = Poly.constant(0)
        for mono, coeff in self.terms.items():
            term = Poly.constant(coeff)
            for name, exp in mono:
                atom = self.atoms[name]
                substitute = atom.ideal is not None and (atom.exact or not only_exact)
                factor = (
                    atom.ideal.idealized(only_exact)
                    if substitute and atom.ideal is not None
                    else Poly({((name, 1),): 1}, {name: atom})
                )
                for _ in range(abs(exp)):
                    term = term * factor if exp > 0 else term / factor
            result = result + term
        return result

    # -- rendering ---------------------------------------------------------------------------
    def text(self, ideal: bool = False) -> str:
        poly = self.idealized(only_exact=not ideal)
        if not poly.terms:
            return "0"
        # Construction order reads like the module (first layer first); constants go last.
        ordered = sorted(poly.terms.items(), key=lambda item: item[0] == ())
        parts = [_render_term(mono, coeff) for mono, coeff in ordered]
        out = parts[0]
        for part in parts[1:]:
            out += f" - {part[1:]}" if part.startswith("-") else f" + {part}"
        return out

    def __repr__(self) -> str:
        return f"Poly({self.text()!r} = {self.value()})"


def _render_term(mono: Monomial, coeff: Fraction) -> str:
    num = "".join(_power(n, e) for n, e in mono if e > 0)
    den = "".join(_power(n, -e) for n, e in mono if e < 0)
    sign = "-" if coeff < 0 else ""
    coeff = abs(coeff)
    numerator_coeff = coeff.numerator
    if den or coeff.denominator != 1:
        den_text = (str(coeff.denominator) if coeff.denominator != 1 else "") + den
        lead = str(numerator_coeff) if (numerator_coeff != 1 or not num) else ""
        return f"{sign}{lead}{num}/{den_text}"
    lead = str(numerator_coeff) if (numerator_coeff != 1 or not num) else ""
    return f"{sign}{lead}{num}"


def _power(name: str, exp: int) -> str:
    return name if exp == 1 else name + str(exp).translate(_SUPERSCRIPT)


Num = int | Poly


def is_symbolic(*values: object) -> bool:
    return any(isinstance(v, Poly) for v in values)


def as_int(value: Num) -> int:
    return value if isinstance(value, int) else int(value)


def ratio(a: Num, b: Num) -> Poly | None:
    """a/b as a rational ideal form when either side is symbolic; None for plain ints, whose
    derived widths need no ideal form (and the cost model's hot path no Fraction)."""
    if isinstance(a, Poly):
        return a / b
    if isinstance(b, Poly):
        return Poly.constant(a) / b
    return None


def derived(
    name: str,
    function: Callable[..., int],
    inputs: list[Num],
    definition: str,
    ideal: Num | None = None,
    exact: bool = False,
) -> Num:
    """A derived width ``function(*inputs)``: a plain int when all inputs are ints, else a named
    atom that remembers ``function`` (so compiled closed forms compute it the same way).

    ``ideal`` is the rational form the papers print (``m/r`` for ``⌊m/r⌋``); ``exact=True``
    says it always equals the value, so even exact formulas may show it.
    """
    value = function(*(as_int(x) for x in inputs))
    if not is_symbolic(*inputs):
        return value
    names = []
    for x in inputs:
        if not (isinstance(x, Poly) and len(x.terms) == 1 and len(next(iter(x.terms))) == 1):
            raise ValueError(f"derived width {name!r} needs plain symbols as inputs")
        names.append(next(iter(x.terms))[0][0])
    ideal_poly = ideal if isinstance(ideal, Poly) or ideal is None else Poly.constant(ideal)
    return Poly.symbol(name, value, definition, ideal_poly, exact, function, tuple(names))


def identifier(name: str) -> str:
    """A Python identifier for an atom name (h' → h_prime)."""
    return name.replace("'", "_prime")


def poly_source(poly: Poly, arguments: list[str]) -> str:
    """A Python expression for an integer polynomial over ``arguments`` and derived atoms."""
    terms = []
    for mono, coeff in poly.terms.items():
        if coeff.denominator != 1 or any(e < 0 for _, e in mono):
            raise ValueError(f"{poly.text()} is not an integer polynomial")
        unknown = {n for n, _ in mono if n not in arguments and poly.atoms[n].function is None}
        if unknown:
            raise ValueError(f"{poly.text()}: symbols {sorted(unknown)} are neither arguments nor derived")
        factors = [str(coeff.numerator)] + [
            identifier(n) if e == 1 else f"{identifier(n)}**{e}" for n, e in mono
        ]
        terms.append("*".join(factors))
    return "(" + (" + ".join(terms) or "0") + ")"


def compile_source(
    arguments: list[str], expression: str, names: Mapping[str, Any], derived_atoms: list[Atom]
) -> Any:
    """``lambda arguments: expression`` with only ``names`` in scope; derived atoms are computed
    first by their own functions.  Closed forms defined once with primitives and run once on
    symbols thus evaluate at the speed of hand-written arithmetic."""
    for name in arguments:
        if not name.isidentifier():
            raise ValueError(f"symbol {name!r} cannot be a Python argument")
    scope: dict[str, Any] = {"__builtins__": {}, **names}
    body = expression
    if derived_atoms:
        for atom in derived_atoms:
            scope[f"_derive_{identifier(atom.name)}"] = atom.function
        params = ", ".join(identifier(a.name) for a in derived_atoms)
        calls = ", ".join(f"_derive_{identifier(a.name)}({', '.join(a.inputs)})" for a in derived_atoms)
        body = f"(lambda {params}: {expression})({calls})"
    # The source is generated from integer polynomials by poly_source, never from user text.
    return eval(f"lambda {', '.join(arguments)}: {body}", scope)
