"""Costs of whole arrays of configurations at once (numpy), for exhaustive enumeration.

A configuration is a width (an index into the networks, one per width) and, for each *slot* (one position),
the choice of one option there (an index into that slot's options; option 0 may be ``None``,
meaning nothing at that layer).  Each option's cost change is computed once per width from the
closed forms; a configuration's cost is the plain network's plus the sum of its options'
changes, so millions of configurations cost one gather and one sum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ulsam_nas.cost.compose import check_convention
from ulsam_nas.errors import InvalidInput
from ulsam_nas.networks.core import Network
from ulsam_nas.networks.plan import TAKE_OUT, Placement


@dataclass
class BatchCost:
    params: np.ndarray  # int64, one per configuration
    macs: np.ndarray  # int64
    valid: np.ndarray  # bool: False where an option is invalid at that width
    latency: np.ndarray | None = None  # float64 ms, predicted, where the table has latencies


class CostTable:
    """Per-width network totals and per-(width, slot, option) cost changes."""

    def __init__(
        self,
        networks: Sequence[Network],
        slots: Sequence[Sequence[Placement | None]],
        convention: str = "exact",
    ) -> None:
        """``networks``: the network at each width (any source); ``slots``: each slot's options
        at one position of its own (``None``: nothing there)."""
        check_convention(convention)
        if not networks:
            raise InvalidInput("networks is empty; allowed: the network at one or more widths")
        seen: set[int] = set()
        for slot in slots:
            indices = {p.index for p in slot if p is not None}
            if len(indices) != 1 or indices & seen:
                raise InvalidInput("each slot must hold options at one layer index of its own (None allowed)")
            seen |= indices
        self.slots = [list(slot) for slot in slots]
        check_apart(networks[0], self.slots)
        options = max((len(slot) for slot in slots), default=1)
        shape = (len(networks), len(self.slots), options)
        self.base_params = np.zeros(len(networks), dtype=np.int64)
        self.base_macs = np.zeros(len(networks), dtype=np.int64)
        self.delta_params = np.zeros(shape, dtype=np.int64)
        self.delta_macs = np.zeros(shape, dtype=np.int64)
        self.option_valid = np.zeros(shape, dtype=bool)
        self.base_latency: np.ndarray | None = None
        self.delta_latency: np.ndarray | None = None
        for w, network in enumerate(networks):
            total = network.total(convention)
            self.base_params[w], self.base_macs[w] = total.params, total.macs
            for s, slot in enumerate(self.slots):
                for o, placement in enumerate(slot):
                    if placement is None:
                        self.option_valid[w, s, o] = True
                        continue
                    try:
                        resolved = network.resolve_placement(placement)
                    except InvalidInput:
                        continue  # e.g. groups not dividing the channels at this width
                    change = network.placement_cost(resolved, convention)
                    self.delta_params[w, s, o] = change.params
                    self.delta_macs[w, s, o] = change.macs
                    self.option_valid[w, s, o] = True

    def evaluate(self, width_index: np.ndarray, choices: np.ndarray) -> BatchCost:
        """Costs of N configurations: ``width_index`` (N,) and ``choices`` (N, slots)."""
        width_index = np.asarray(width_index, dtype=np.intp)
        choices = np.asarray(choices, dtype=np.intp).reshape(len(width_index), len(self.slots))
        slot_index = np.arange(len(self.slots))[None, :]
        w = width_index[:, None]
        params = self.base_params[width_index] + self.delta_params[w, slot_index, choices].sum(axis=1)
        macs = self.base_macs[width_index] + self.delta_macs[w, slot_index, choices].sum(axis=1)
        valid = self.option_valid[w, slot_index, choices].all(axis=1)
        latency = None
        if self.base_latency is not None and self.delta_latency is not None:
            latency = self.base_latency[width_index] + self.delta_latency[w, slot_index, choices].sum(axis=1)
        return BatchCost(params, macs, valid, latency)

    def set_latency(self, base: np.ndarray, delta: np.ndarray) -> None:
        """Predicted latencies (ms): the plain network's per width, and each option's change per
        (width, slot, option) — additive, like the costs (``latency.LatencyTable``)."""
        if base.shape != self.base_macs.shape or delta.shape != self.delta_macs.shape:
            raise InvalidInput(f"latency arrays of shapes {base.shape}, {delta.shape} do not fit the table")
        self.base_latency, self.delta_latency = base.astype(float), delta.astype(float)

    def enumerate_all(self) -> tuple[np.ndarray, np.ndarray, BatchCost]:
        """Every configuration of the space: (width_index, choices, costs)."""
        sizes = [len(self.base_macs)] + [len(slot) for slot in self.slots]
        grid = np.indices(sizes).reshape(len(sizes), -1).T
        width_index, choices = grid[:, 0], grid[:, 1:]
        return width_index, choices, self.evaluate(width_index, choices)

    def least(self, kind: str, max_modules: int) -> tuple[int, list[int]]:
        """The configuration with the least ``kind`` (macs, params or latency) among those with
        at most ``max_modules`` modules: (width index, choices), exact without enumeration —
        per width, the plain network plus the ``max_modules`` most negative changes, one per slot
        (each slot's most negative option)."""
        delta = {"macs": self.delta_macs, "params": self.delta_params, "latency": self.delta_latency}[kind]
        if delta is None:
            raise InvalidInput("no latencies in this cost table (set_latency first)")
        best: tuple[float, int, list[int]] | None = None
        for w in range(len(self.base_macs)):
            picks = []
            for s, slot in enumerate(self.slots):
                options = [o for o in range(1, len(slot)) if self.option_valid[w, s, o]]
                if options:
                    o = min(options, key=lambda o: delta[w, s, o])
                    if delta[w, s, o] < 0:
                        picks.append((float(delta[w, s, o]), s, o))
            choices = [0] * len(self.slots)
            for _, s, o in sorted(picks)[:max_modules]:
                choices[s] = o
            found = self.evaluate(np.array([w]), np.array([choices]))
            values = {"macs": found.macs, "params": found.params, "latency": found.latency}[kind]
            assert values is not None
            if best is None or float(values[0]) < best[0]:
                best = (float(values[0]), w, choices)
        assert best is not None, "a cost table has at least one width"
        return best[1], best[2]

    def placements(self, choices: Sequence[int]) -> list[Placement]:
        """The plan of one configuration's choices."""
        return [p for slot, c in zip(self.slots, choices, strict=True) if (p := slot[int(c)]) is not None]


def check_apart(network: Network, slots: Sequence[Sequence[Placement | None]]) -> None:
    """A configuration's cost is a sum over slots, so no slot may lie inside one that an option
    replaces (that combination cannot be built; its sum would be a wrong number).  A search space's
    positions are checked with it too."""
    index = [next(p.index for p in slot if p is not None) for slot in slots]
    for outer, slot in zip(index, slots, strict=True):
        if not any(p is not None and p.action in TAKE_OUT for p in slot):
            continue
        for inner in index:
            if network.inside(inner, outer):
                raise InvalidInput(
                    f"slots at {network.where(inner)} and {network.where(outer)} nest, and an option "
                    f"replaces {network.where(outer)}; allowed: slots outside any that may be replaced"
                )
