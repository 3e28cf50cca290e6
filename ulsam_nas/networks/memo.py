"""The one cache policy of a network source: each network object remembers what it derived from
itself (resolved placements and plans, placement costs) in its own bounded memo, which goes with
it; networks are cached per shape by their source (a built-in's table per ``BackboneShape``, a
brought network's trace per width), and a plan resolved against a network is a value
(``ResolvedPlan``) that network takes back without resolving it again."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")
MEMO_LIMIT = 65536  # entries per network: a search's plans share placements, so few are distinct


class Memo:
    """A bounded memo: ``get(key, compute)`` computes a value once; when the memo is full it is
    emptied (a search revisits few distinct placements, so a rare refill costs little)."""

    __slots__ = ("_values", "limit")

    def __init__(self, limit: int = MEMO_LIMIT) -> None:
        self._values: dict[Hashable, Any] = {}
        self.limit = limit

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        try:
            return self._values[key]
        except KeyError:
            pass
        if len(self._values) >= self.limit:
            self._values.clear()
        value = self._values[key] = compute()
        return value

    def clear(self) -> None:
        self._values.clear()

    def __len__(self) -> int:
        return len(self._values)
