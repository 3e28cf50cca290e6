"""Checks and derived widths shared by several attention modules."""

from __future__ import annotations

import math
import random
from fractions import Fraction
from typing import Any

from ulsam_nas.cost.symbolic import Num, derived, ratio
from ulsam_nas.errors import InvalidInput


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` if it is a positive int (bools excluded), else raise InvalidInput."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"{name}={value!r} is invalid; allowed: a positive integer")
    return value


def check_reduction(channels: int, reduction: int) -> None:
    check_positive_int("reduction", reduction)
    if reduction > channels:
        raise InvalidInput(
            f"reduction={reduction} is larger than channels={channels}; allowed: 1..{channels}"
        )


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def reduced_width(m: Num, r: Num) -> Num:
    """The MLP/bottleneck width ``max(1, ⌊m/r⌋)`` of SE, BAM and CBAM."""
    return derived("c", _reduced, [m, r], "max(1, ⌊m/r⌋)", ideal=ratio(m, r))


def _reduced(m: int, r: int) -> int:
    return max(1, m // r)


def sample_reduction(rng: random.Random, channels: int) -> dict[str, Any]:
    """A reduction ratio: usually a common one (4, 8, 16), sometimes any value up to channels."""
    common = [r for r in (4, 8, 16) if r <= channels]
    if common and rng.random() < 0.5:
        return {"reduction": rng.choice(common)}
    return {"reduction": rng.randint(1, channels)}


def number_text(value: object) -> str:
    """An option value as a user would write it: 1/16 for 0.0625 (a fraction with a small
    denominator that equals the float exactly), else the float's shortest repr; true/false for
    booleans; anything else as str()."""
    if isinstance(value, bool):
        return str(value).lower()
    if not isinstance(value, float) or value.is_integer() or not is_finite_number(value):
        return str(value)
    fraction = Fraction(value).limit_denominator(1024)
    return f"{fraction.numerator}/{fraction.denominator}" if float(fraction) == value else repr(value)


def parse_number(text: str) -> float:
    """The inverse of ``number_text`` for a non-integer option: ``0.0625`` or ``1/16``; raises
    ValueError (ZeroDivisionError for ``1/0``) when ``text`` is neither."""
    numerator, slash, denominator = text.partition("/")
    return float(numerator) / float(denominator) if slash else float(text)


def is_finite_number(value: object) -> bool:
    """An int or float (bools excluded) that is neither NaN nor infinite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
