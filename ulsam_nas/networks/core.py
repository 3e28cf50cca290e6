"""What every network source offers: numbered positions with exact costs, plans over them, and a
builder.

A built-in backbone's layer table (``backbones.BackboneTable``) and a traced model
(``analysis.Analysis``) are both a :class:`Network`: the same plan arithmetic (the plain total,
minus what a plan replaces, plus its modules' closed forms) is written once here, and the
search, the batch cost table and the reports work with either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from torch import nn

from ulsam_nas.cost.compose import check_convention, sum_costs
from ulsam_nas.cost.cost import Cost
from ulsam_nas.networks.plan import Placement, PlanLike, ResolvedPlan


@dataclass(frozen=True)
class Row:
    """One line of a network's breakdown, whatever its source: a layer or operation of the
    network (with its parameters), or a module a plan places (``inserted``).  ``replaced`` rows
    are in a layer the plan replaces (not in the total); the other rows sum to the plan's cost."""

    name: str  # the submodule's name in the model the plan builds ('' is a model's own forward)
    index: int  # the position the row belongs to (a placed module: its position; -1: none)
    what: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    cost: Cost
    replaced: bool = False
    inserted: bool = False


@runtime_checkable
class Network(Protocol):
    """A network at one shape (width, input size, classes): positions ``0..last_index``."""

    @property
    def name(self) -> str:
        """How messages name the network (``mobilenet_v1``, ``examples/mynets.py:resnet_like``)."""
        ...

    @property
    def last_index(self) -> int: ...

    @property
    def input_size(self) -> tuple[int, int, int]:
        """(channels, height, width) of one input image."""
        ...

    def allowed(self, action: str) -> list[int]:
        """The positions where ``action`` (insert, replace, swap) is allowed."""
        ...

    def where(self, index: int) -> str:
        """A position as a reader knows it: ``layer 7`` or ``layer3.1``."""
        ...

    def inside(self, inner: int, outer: int) -> bool:
        """Whether position ``inner`` lies inside position ``outer`` (a module placed there would
        go with ``outer`` when a plan replaces it)."""
        ...

    def module_shape(self, index: int, action: str) -> tuple[int, int, int]:
        """(channels, height, width) a module placed at ``index`` by ``action`` sees."""
        ...

    def resolve(self, plan: PlanLike) -> ResolvedPlan:
        """A plan's placements, validated, every option filled, in network order (a plan
        already resolved against this network is returned as it is)."""
        ...

    def resolve_placement(self, placement: Placement) -> Placement:
        """One placement checked against its position with every option filled (InvalidInput
        naming why when the position cannot take it)."""
        ...

    def placement_cost(self, placement: Placement, convention: str) -> Cost:
        """What a resolved placement adds: its module, minus what it replaces."""
        ...

    def total(self, convention: str = "exact") -> Cost:
        """The plain network's cost."""
        ...

    @property
    def fingerprint(self) -> str:
        """A text naming this network at this shape, the same in every process (the key of its
        measured latencies)."""
        ...

    def taken_out(self, index: int, action: str) -> str:
        """The name, in the plain model ``build(None)`` returns, of the submodule a placement at
        ``index`` by ``action`` (replace, swap) takes out."""
        ...

    def build(self, plan: PlanLike) -> nn.Module:
        """A model of the network with ``plan``'s modules (new modules initialised under torch's
        current seed)."""
        ...


def plan_cost(network: Network, plan: PlanLike = None, convention: str = "exact") -> Cost:
    """A plan's closed-form cost on any network: the plain total plus each placement's change
    (no model built, nothing traced)."""
    check_convention(convention)
    changes = [network.placement_cost(p, convention) for p in network.resolve(plan)]
    return sum_costs(network.total(convention), changes)
