"""MobileNets with attention placements: the model, and its cost as the sum of closed forms.

The plain backbone's per-layer costs are computed once per (backbone, α, resolution, classes,
input channels, stem) and cached; a plan's cost is that total minus the layers it replaces plus
the closed forms of its modules, with no model built.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ulsam_nas.attention import create_attention, get_attention
from ulsam_nas.attention._common import check_positive_int
from ulsam_nas.backbones import mobilenet_v1, mobilenet_v2
from ulsam_nas.backbones.layers import LayerSpec, out_size
from ulsam_nas.backbones.plan import Placement, PlanLike, parse_plan
from ulsam_nas.cost.cost import CONVENTIONS, Cost
from ulsam_nas.cost.primitives import elementwise, linear
from ulsam_nas.errors import InvalidInput

STEMS = ("imagenet", "small")


@dataclass(frozen=True)
class Family:
    layer_specs: Callable[[float, int, str], list[LayerSpec]]
    dropout: float
    # Indices replace may never target, whatever their shape (the stem, MobileNetV2's last conv).
    fixed: Callable[[int], tuple[int, ...]]


BACKBONES: dict[str, Family] = {
    "mobilenet_v1": Family(mobilenet_v1.layer_specs, 0.0, lambda last: (0,)),
    "mobilenet_v2": Family(mobilenet_v2.layer_specs, 0.2, lambda last: (0, last)),
}


@dataclass(frozen=True)
class LayerRecord:
    spec: LayerSpec
    in_hw: tuple[int, int]
    out_hw: tuple[int, int]
    exact: Cost

    @functools.cached_property
    def paper(self) -> Cost:
        return _paper(self.exact)

    def cost(self, convention: str) -> Cost:
        return self.exact if convention == "exact" else self.paper


@dataclass(frozen=True, eq=False)  # identity hash: tables are cached singletons and cache keys
class BackboneTable:
    """The plain backbone, layer by layer, with every layer's closed-form cost."""

    backbone: str
    width_mult: float
    resolution: int
    num_classes: int
    in_channels: int
    stem: str
    layers: tuple[LayerRecord, ...]
    head: LayerRecord

    @functools.cached_property
    def _totals(self) -> dict[str, Cost]:
        return {}

    def total(self, convention: str) -> Cost:
        """The plain backbone's cost (computed once per convention)."""
        if convention not in self._totals:
            self._totals[convention] = sum_costs(
                self.head.cost(convention), [r.cost(convention) for r in self.layers]
            )
        return self._totals[convention]

    @property
    def last_index(self) -> int:
        return len(self.layers) - 1

    def replaceable(self) -> list[int]:
        """Indices where ``replace`` is allowed (stride 1, same channels, not the stem/last)."""
        return sorted(self._replaceable)

    @functools.cached_property
    def _replaceable(self) -> frozenset[int]:
        fixed = BACKBONES[self.backbone].fixed(self.last_index)
        return frozenset(
            r.spec.position for r in self.layers if r.spec.keeps_shape and r.spec.position not in fixed
        )


def _paper(exact: Cost) -> Cost:
    # The ULSAM paper's accounting of backbone layers: conv/FC weights and FC bias, no BatchNorm.
    kept = {k: v for k, v in exact.params_by.items() if k in ("weight", "bias")}
    return Cost(sum(kept.values()), exact.macs, kept, exact.macs_by, {}, "paper")


def check_backbone_args(
    backbone: str, width_mult: float, resolution: int, num_classes: int, in_channels: int, stem: str
) -> None:
    if backbone not in BACKBONES:
        raise InvalidInput(f"backbone {backbone!r} is unknown; allowed: {', '.join(BACKBONES)}")
    if isinstance(width_mult, bool) or not isinstance(width_mult, (int, float)) or not width_mult > 0:
        raise InvalidInput(f"width_mult={width_mult!r} is invalid; allowed: a positive number")
    check_positive_int("resolution", resolution)
    check_positive_int("num_classes", num_classes)
    check_positive_int("in_channels", in_channels)
    if stem not in STEMS:
        raise InvalidInput(f"stem={stem!r} is unknown; allowed: {', '.join(STEMS)}")


@functools.lru_cache(maxsize=256)
def backbone_table(
    backbone: str,
    width_mult: float = 1.0,
    resolution: int = 224,
    num_classes: int = 1000,
    in_channels: int = 3,
    stem: str = "imagenet",
) -> BackboneTable:
    check_backbone_args(backbone, width_mult, resolution, num_classes, in_channels, stem)
    specs = BACKBONES[backbone].layer_specs(float(width_mult), in_channels, stem)
    records = []
    h = w = resolution
    for spec in specs:
        oh, ow = out_size(h, spec.stride), out_size(w, spec.stride)
        records.append(LayerRecord(spec, (h, w), (oh, ow), spec.cost(h, w)))
        h, w = oh, ow
    last = specs[-1].out_channels
    head_spec = LayerSpec(len(specs), "head", last, num_classes, 1)
    head_cost = (
        elementwise("global_avg_pool", last * h * w) + linear(last, num_classes, bias=True)
    ).evaluate("exact")
    head = LayerRecord(head_spec, (h, w), (1, 1), head_cost)
    return BackboneTable(
        backbone, width_mult, resolution, num_classes, in_channels, stem, tuple(records), head
    )


@functools.lru_cache(maxsize=4096)
def _module_cost(
    module: str, channels: int, h: int, w: int, convention: str, config: tuple[tuple[str, Any], ...]
) -> Cost:
    # A pure function of its arguments; cached like the backbone table, since a search meets the
    # same module at the same position in many plans.
    spec = get_attention(module)
    cfg = spec.config_cls(**dict(config))  # resolved and validated by _resolve_placement
    return spec.cost(channels, h, w, cfg, convention)


def resolve_plan(table: BackboneTable, plan: PlanLike) -> list[Placement]:
    """Validate a plan against the backbone and fill every module option's default."""
    return [_resolve_placement(table, p) for p in parse_plan(plan)]


@functools.lru_cache(maxsize=65536)
def _resolve_placement(table: BackboneTable, p: Placement) -> Placement:
    # Cached per (backbone table, placement): a search validates the same placement in many plans.
    if p.index > table.last_index:
        raise InvalidInput(
            f"{p.text()}: index {p.index} is out of range for {table.backbone}; "
            f"allowed: 0..{table.last_index}"
        )
    record = table.layers[p.index]
    if p.action == "replace" and p.index not in table._replaceable:
        spec = record.spec
        why = (
            f"layer {p.index} is fixed"
            if spec.keeps_shape
            else f"layer {p.index} changes the shape (stride {spec.stride}, "
            f"{spec.in_channels}→{spec.out_channels} channels)"
        )
        allowed = ", ".join(map(str, sorted(table.replaceable()))) or "none"
        raise InvalidInput(f"{p.text()} is not allowed: {why}; replace is allowed at {allowed}")
    spec_entry = get_attention(p.module)
    try:
        config = spec_entry.make_config(record.spec.out_channels, **p.config)
        config.validate(record.spec.out_channels, *record.out_hw)  # the map-size checks
    except InvalidInput as error:
        raise InvalidInput(f"{p.text()} (at {record.spec.out_channels} channels): {error}") from None
    options = {f: getattr(config, f) for f in spec_entry.option_names()}
    return Placement(p.action, p.index, p.module, **options)


@functools.lru_cache(maxsize=65536)
def _placement_cost(table: BackboneTable, p: Placement, convention: str) -> Cost:
    """The cost a resolved placement adds: its module, minus the layer it replaces."""
    record = table.layers[p.index]
    cost = _module_cost(
        p.module, record.spec.out_channels, *record.out_hw, convention, tuple(p.config.items())
    )
    return cost - record.cost(convention) if p.action == "replace" else cost


def network_cost(
    backbone: str,
    width_mult: float = 1.0,
    plan: PlanLike = None,
    resolution: int = 224,
    num_classes: int = 1000,
    in_channels: int = 3,
    stem: str = "imagenet",
    convention: str = "exact",
) -> Cost:
    """Closed-form params and MACs of a MobileNet with a placement plan, built from its layers'
    closed forms (no model is built).  ``exact``: conv/FC weights, FC bias, BatchNorm γ/β;
    conv + FC MACs.  ``paper``: the ULSAM paper's accounting (no BatchNorm; each module at its
    paper cost, e.g. ULSAM 2m params and 2m·hw MACs; replaced layers subtracted)."""
    if convention not in CONVENTIONS:
        raise InvalidInput(f"convention={convention!r} is unknown; allowed: {', '.join(CONVENTIONS)}")
    table = backbone_table(backbone, width_mult, resolution, num_classes, in_channels, stem)
    return sum_costs(
        table.total(convention), [_placement_cost(table, p, convention) for p in resolve_plan(table, plan)]
    )


def sum_costs(first: Cost, others: list[Cost]) -> Cost:
    """``first + others[0] + ...`` with one pass over the breakdowns (the search's hot path)."""
    if not others:
        return first
    params, macs = first.params, first.macs
    params_by, macs_by, ops = dict(first.params_by), dict(first.macs_by), dict(first.ops)
    for cost in others:
        params += cost.params
        macs += cost.macs
        for target, source in ((params_by, cost.params_by), (macs_by, cost.macs_by), (ops, cost.ops)):
            for key, value in source.items():
                target[key] = target.get(key, 0) + value
    return Cost(params, macs, params_by, macs_by, ops, first.convention)


@dataclass(frozen=True)
class BreakdownRow:
    name: str  # the submodule's name in the model built by create_network
    index: int
    what: str
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    cost: Cost
    replaced: bool = False


def network_breakdown(
    backbone: str,
    width_mult: float = 1.0,
    plan: PlanLike = None,
    resolution: int = 224,
    num_classes: int = 1000,
    in_channels: int = 3,
    stem: str = "imagenet",
    convention: str = "exact",
) -> list[BreakdownRow]:
    """Per-layer closed forms in network order: backbone layers, modules, and the head."""
    table = backbone_table(backbone, width_mult, resolution, num_classes, in_channels, stem)
    by_index = {p.index: p for p in resolve_plan(table, plan)}
    rows = []
    for record in table.layers:
        spec = record.spec
        shape_in = (spec.in_channels, *record.in_hw)
        shape_out = (spec.out_channels, *record.out_hw)
        placement = by_index.get(spec.position)
        replaced = placement is not None and placement.action == "replace"
        rows.append(
            BreakdownRow(
                _layer_name(spec.position),
                spec.position,
                spec.describe(),
                shape_in,
                shape_out,
                record.cost(convention),
                replaced,
            )
        )
        if placement is not None:
            cost = _module_cost(
                placement.module,
                spec.out_channels,
                *record.out_hw,
                convention,
                tuple(placement.config.items()),
            )
            rows.append(
                BreakdownRow(
                    _module_name(placement), spec.position, placement.text(), shape_out, shape_out, cost
                )
            )
    last = table.layers[-1]
    rows.append(
        BreakdownRow(
            "head",
            table.last_index + 1,
            f"avg-pool + fc→{num_classes}",
            (last.spec.out_channels, *last.out_hw),
            (num_classes, 1, 1),
            table.head.cost(convention),
        )
    )
    return rows


def _layer_name(index: int) -> str:
    return f"layer{index}"


def _module_name(placement: Placement) -> str:
    where = "after" if placement.action == "insert" else "replacing"
    return f"{placement.module}_{where}_{placement.index}"


class Network(nn.Module):
    """features (named layers and modules, in order) → global average pool → dropout → FC."""

    def __init__(self, features: nn.Sequential, classifier: nn.Linear, dropout: float) -> None:
        super().__init__()
        self.features = features
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
        return self.classifier(self.dropout(x))


def create_network(
    backbone: str,
    width_mult: float = 1.0,
    plan: PlanLike = None,
    resolution: int = 224,
    num_classes: int = 1000,
    in_channels: int = 3,
    stem: str = "imagenet",
) -> nn.Module:
    """MobileNetV1/V2 at width α with attention modules placed by ``plan``."""
    table = backbone_table(backbone, width_mult, resolution, num_classes, in_channels, stem)
    by_index = {p.index: p for p in resolve_plan(table, plan)}
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for record in table.layers:
        spec = record.spec
        placement = by_index.get(spec.position)
        if placement is None or placement.action == "insert":
            layers[_layer_name(spec.position)] = spec.build()
        if placement is not None:
            layers[_module_name(placement)] = create_attention(
                placement.module, spec.out_channels, **placement.config
            )
    last = table.layers[-1].spec.out_channels
    return Network(nn.Sequential(layers), nn.Linear(last, num_classes), BACKBONES[backbone].dropout)
