"""Built-in backbones with attention placements: the model, and its cost as the sum of closed forms.

The plain backbone's per-layer costs are computed once per :class:`BackboneShape` (backbone, α,
resolution, classes, input channels, stem: one value) and cached; a plan's cost is that total
minus the layers it replaces plus the closed forms of its modules, with no model built.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ulsam_nas.attention import create_attention, get_attention
from ulsam_nas.attention._common import check_positive_int
from ulsam_nas.backbones import mobilenet_v1, mobilenet_v2, mobilenet_v3, resnet
from ulsam_nas.backbones.layers import LayerSpec, out_size
from ulsam_nas.cost.compose import check_convention, paper_of, sum_costs
from ulsam_nas.cost.cost import Cost
from ulsam_nas.cost.primitives import elementwise, linear
from ulsam_nas.errors import InvalidInput
from ulsam_nas.networks.core import plan_cost
from ulsam_nas.networks.memo import Memo
from ulsam_nas.networks.plan import REMOVE, Placement, PlanLike, ResolvedPlan, parse_plan, placement_error

STEMS = ("imagenet", "small")


@dataclass(frozen=True)
class Family:
    layer_specs: Callable[[float, int, str], list[LayerSpec]]
    dropout: float
    # Indices replace may never target, whatever their shape (the stem, the last conv).
    fixed: Callable[[int], tuple[int, ...]]
    # MobileNetV3's classifier: FC to this width (given α) + hard swish before the last FC.
    classifier_width: Callable[[float], int] | None = None


def _first(last: int) -> tuple[int, ...]:
    return (0,)


def _first_and_last(last: int) -> tuple[int, ...]:
    return (0, last)


BACKBONES: dict[str, Family] = {
    "mobilenet_v1": Family(mobilenet_v1.layer_specs, 0.0, _first),
    "mobilenet_v2": Family(mobilenet_v2.layer_specs, 0.2, _first_and_last),
    "mobilenet_v3_large": Family(
        mobilenet_v3.large_layer_specs,
        0.2,
        _first_and_last,
        functools.partial(mobilenet_v3.classifier_width, "mobilenet_v3_large"),
    ),
    "mobilenet_v3_small": Family(
        mobilenet_v3.small_layer_specs,
        0.2,
        _first_and_last,
        functools.partial(mobilenet_v3.classifier_width, "mobilenet_v3_small"),
    ),
    "resnet18": Family(resnet.layer_specs, 0.0, _first),
}


@dataclass(frozen=True)
class LayerRecord:
    spec: LayerSpec
    in_hw: tuple[int, int]
    out_hw: tuple[int, int]
    exact: Cost

    @functools.cached_property
    def paper(self) -> Cost:
        return paper_of(self.exact)

    def cost(self, convention: str) -> Cost:
        return self.exact if convention == "exact" else self.paper


@dataclass(frozen=True)
class BackboneShape:
    """A built-in network at one shape: the backbone, its width, its input and its classes.

    One value for what every entry point takes (``network_cost``, ``create_network``,
    ``backbone_table``, a study's network): the key of the cached layer table, so a shape
    however it was spelled has one table, and plans resolved against it are reused."""

    backbone: str
    width_mult: float = 1.0
    resolution: int = 224
    num_classes: int = 1000
    in_channels: int = 3
    stem: str = "imagenet"

    def __post_init__(self) -> None:
        check_backbone_args(
            self.backbone, self.width_mult, self.resolution, self.num_classes, self.in_channels, self.stem
        )

    def table(self) -> BackboneTable:
        """The plain network layer by layer with closed-form costs (one per shape, cached)."""
        return _table_of(self)

    def arguments(self) -> dict[str, Any]:
        """The shape as keyword arguments of ``create_network`` and ``network_cost``."""
        return asdict(self)


@dataclass(frozen=True, eq=False)  # identity hash: tables are cached singletons and cache keys
class BackboneTable:
    """The plain backbone, layer by layer, with every layer's closed-form cost."""

    shape: BackboneShape
    layers: tuple[LayerRecord, ...]
    head: LayerRecord
    memo: Memo = field(default_factory=Memo, repr=False)  # what the table derives (networks.memo)

    @functools.cached_property
    def _totals(self) -> dict[str, Cost]:
        return {}

    def total(self, convention: str = "exact") -> Cost:
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

    def swappable(self) -> list[int]:
        """Indices where ``swap`` is allowed: blocks that have their own attention (SE)."""
        return [r.spec.position for r in self.layers if r.spec.has_se]

    def allowed(self, action: str) -> list[int]:
        """The indices where ``action`` is allowed."""
        if action == "replace":
            return self.replaceable()
        if action == "swap":
            return self.swappable()
        return list(range(self.last_index + 1))

    # -- the Network protocol (ulsam_nas.networks.core) ----------------------------------------
    @property
    def name(self) -> str:
        return self.shape.backbone

    def where(self, index: int) -> str:
        return f"layer {index}"

    def inside(self, inner: int, outer: int) -> bool:
        return False  # a backbone's layers follow one another

    def module_shape(self, index: int, action: str) -> tuple[int, int, int]:
        record = self.layers[index]
        return (record.spec.module_channels(action), *record.out_hw)

    def resolve(self, plan: PlanLike) -> ResolvedPlan:
        return resolve_plan(self, plan)

    def resolve_placement(self, placement: Placement) -> Placement:
        return self.memo.get(("placement", placement), lambda: _resolve_placement(self, placement))

    def placement_cost(self, placement: Placement, convention: str) -> Cost:
        return self.memo.get(
            ("cost", placement, convention), lambda: _placement_cost(self, placement, convention)
        )

    @property
    def input_size(self) -> tuple[int, int, int]:
        return (self.shape.in_channels, self.shape.resolution, self.shape.resolution)

    @property
    def fingerprint(self) -> str:
        return repr(self.shape)

    def taken_out(self, index: int, action: str) -> str:
        layer = f"features.{_layer_name(index)}"
        return f"{layer}.block.se" if action == "swap" else layer

    def gate_cost(self, index: int, convention: str) -> Cost:
        """The cost of the attention gate (SE) block ``index`` has of its own."""
        return self.memo.get(("gate", index, convention), lambda: _gate_cost(self, index, convention))

    def build(self, plan: PlanLike, *, plain_first: bool = False) -> nn.Module:
        """The network with ``plan``'s modules; ``plain_first``: the plain network is drawn
        first and the modules after it, so every layer two candidates of this shape share starts
        identical under one seed (by default layers and modules are drawn in network order, as
        ``create_network`` does: a module shifts the initialisation of every later layer)."""
        return _build_plain_first(self, plan) if plain_first else _build(self, plan)

    @functools.cached_property
    def _replaceable(self) -> frozenset[int]:
        fixed = BACKBONES[self.shape.backbone].fixed(self.last_index)
        return frozenset(
            r.spec.position for r in self.layers if r.spec.keeps_shape and r.spec.position not in fixed
        )


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


def backbone_table(
    backbone: str,
    width_mult: float = 1.0,
    resolution: int = 224,
    num_classes: int = 1000,
    in_channels: int = 3,
    stem: str = "imagenet",
) -> BackboneTable:
    """The plain backbone's layer table at one shape (cached per shape)."""
    return BackboneShape(backbone, width_mult, resolution, num_classes, in_channels, stem).table()


@functools.lru_cache(maxsize=256)
def _table_of(shape: BackboneShape) -> BackboneTable:
    specs = BACKBONES[shape.backbone].layer_specs(float(shape.width_mult), shape.in_channels, shape.stem)
    records: list[LayerRecord] = []
    h = w = shape.resolution
    for spec in specs:
        oh, ow = out_size(h, spec.stride), out_size(w, spec.stride)
        cost = spec.cost(h, w)
        if not records:  # the stem's convolution reads the image (no input gradient in training)
            assert spec.kind in ("conv", "conv_pool"), spec.kind
            cost = cost.reading_the_image()
        records.append(LayerRecord(spec, (h, w), (oh, ow), cost))
        h, w = oh, ow
    last = specs[-1].out_channels
    head_spec = LayerSpec(len(specs), "head", last, shape.num_classes, 1)
    head_terms = _head_terms(shape.backbone, shape.width_mult, last, shape.num_classes, h, w)
    return BackboneTable(shape, tuple(records), LayerRecord(head_spec, (h, w), (1, 1), head_terms))


def _head_terms(backbone: str, width_mult: float, last: int, num_classes: int, h: int, w: int) -> Cost:
    widen = BACKBONES[backbone].classifier_width
    terms = elementwise("global_avg_pool", last * h * w)
    if widen is None:
        terms += linear(last, num_classes, bias=True)
    else:
        hidden = widen(width_mult)
        terms += linear(last, hidden, bias=True) + elementwise("hardswish", hidden)
        terms += linear(hidden, num_classes, bias=True)
    return terms.evaluate("exact")


def _head_text(backbone: str, width_mult: float, num_classes: int) -> str:
    widen = BACKBONES[backbone].classifier_width
    if widen is None:
        return f"avg-pool + fc→{num_classes}"
    return f"avg-pool + fc→{widen(width_mult)} + h-swish + fc→{num_classes}"


@functools.lru_cache(maxsize=4096)
def _module_cost(
    module: str, channels: int, h: int, w: int, convention: str, config: tuple[tuple[str, Any], ...]
) -> Cost:
    # A pure function of its arguments; cached like the backbone table, since a search meets the
    # same module at the same position in many plans.
    spec = get_attention(module)
    cfg = spec.config_cls(**dict(config))  # resolved and validated by _resolve_placement
    return spec.cost(channels, h, w, cfg, convention)


def resolve_plan(table: BackboneTable, plan: PlanLike) -> ResolvedPlan:
    """Validate a plan against the backbone and fill every module option's default; a ``@*``
    placement becomes one at every index where its action is allowed and no other is placed."""
    if isinstance(plan, ResolvedPlan) and plan.against(table):
        return plan
    placements = parse_plan(plan)
    if placements and placements[0].every:
        every, named = placements[0], placements[1:]
        taken = {p.index for p in named}
        allowed = table.allowed(every.action)
        if not allowed:
            raise InvalidInput(
                f"{every.text()}: {table.shape.backbone} has no index where {every.action} is allowed"
            )
        placements = parse_plan([every.at(i) for i in allowed if i not in taken] + named)
    return ResolvedPlan(table, [table.resolve_placement(p) for p in placements])


def _resolve_placement(table: BackboneTable, p: Placement) -> Placement:
    if p.index > table.last_index:
        raise InvalidInput(
            f"{p.text()}: index {p.index} is out of range for {table.shape.backbone}; "
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
    if p.action == "swap" and not record.spec.has_se:
        allowed = ", ".join(map(str, table.swappable())) or f"nowhere in {table.shape.backbone}"
        raise InvalidInput(
            f"{p.text()} is not allowed: layer {p.index} has no attention of its own to swap; "
            f"swap is allowed at {allowed}"
        )
    if p.module == REMOVE:
        return p
    channels = record.spec.module_channels(p.action)
    try:
        options = get_attention(p.module).resolved_options(channels, *record.out_hw, **p.config)
    except InvalidInput as error:
        raise placement_error(p.text(), f"at {channels} channels", error) from None
    return Placement(p.action, p.index, p.module, **options)


def _gate_cost(table: BackboneTable, index: int, convention: str) -> Cost:
    record = table.layers[index]
    exact = record.spec.gate_cost(*record.in_hw)
    return exact if convention == "exact" else paper_of(exact)


def _placement_cost(table: BackboneTable, p: Placement, convention: str) -> Cost:
    """The cost a resolved placement adds: its module, minus the layer it replaces."""
    record = table.layers[p.index]
    if p.action == "swap":
        removed = table.gate_cost(p.index, convention)
        if p.module == REMOVE:
            nothing = Cost(0, 0, {}, {}, {}, convention, train_by={} if convention == "exact" else None)
            return nothing - removed
        return _placed_module_cost(record, p, convention) - removed
    cost = _placed_module_cost(record, p, convention)
    return cost - record.cost(convention) if p.action == "replace" else cost


def _placed_module_cost(record: LayerRecord, p: Placement, convention: str) -> Cost:
    channels = record.spec.module_channels(p.action)
    return _module_cost(p.module, channels, *record.out_hw, convention, tuple(p.config.items()))


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
    check_convention(convention)
    shape = BackboneShape(backbone, width_mult, resolution, num_classes, in_channels, stem)
    return plan_cost(shape.table(), plan, convention)


def _layer_name(index: int) -> str:
    return f"layer{index}"


def _module_name(placement: Placement) -> str:
    if placement.action == "swap":
        return f"{_layer_name(placement.index)}.block.se"
    where = "after" if placement.action == "insert" else "replacing"
    return f"{placement.module}_{where}_{placement.index}"


class Network(nn.Module):
    """features (named layers and modules, in order) → global average pool → dropout → FC."""

    def __init__(self, features: nn.Sequential, classifier: nn.Module, dropout: float) -> None:
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
    """A built-in backbone at width α with attention modules placed by ``plan``."""
    shape = BackboneShape(backbone, width_mult, resolution, num_classes, in_channels, stem)
    return _build(shape.table(), plan)


def _build(table: BackboneTable, plan: PlanLike) -> nn.Module:
    by_index = {p.index: p for p in resolve_plan(table, plan)}
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for record in table.layers:
        spec = record.spec
        placement = by_index.get(spec.position)
        if placement is not None and placement.action == "swap":
            gate = None if placement.module == REMOVE else _create_module(record, placement)
            layers[_layer_name(spec.position)] = spec.build(gate, keep_gate=gate is not None)
            continue
        if placement is None or placement.action == "insert":
            layers[_layer_name(spec.position)] = spec.build()
        if placement is not None:
            layers[_module_name(placement)] = _create_module(record, placement)
    last = table.layers[-1].spec.out_channels
    family = BACKBONES[table.shape.backbone]
    if family.classifier_width is None:
        return Network(nn.Sequential(layers), nn.Linear(last, table.shape.num_classes), family.dropout)
    hidden = family.classifier_width(table.shape.width_mult)
    classifier = nn.Sequential(
        nn.Linear(last, hidden),
        nn.Hardswish(),
        nn.Dropout(family.dropout),
        nn.Linear(hidden, table.shape.num_classes),
    )
    return Network(nn.Sequential(layers), classifier, 0.0)


def _build_plain_first(table: BackboneTable, plan: PlanLike) -> nn.Module:
    by_index = {p.index: p for p in resolve_plan(table, plan)}
    network = _build(table, None)
    assert isinstance(network, Network)
    plain = dict(network.features.named_children())
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for record in table.layers:
        name, placement = _layer_name(record.spec.position), by_index.get(record.spec.position)
        if placement is not None and placement.action == "swap":
            parts = dict(
                plain[name].get_submodule("block").named_children()
            )  # expand, depthwise, se, project
            if placement.module == REMOVE:
                del parts["se"]
            else:
                parts["se"] = _create_module(record, placement)
            plain[name].block = nn.Sequential(OrderedDict(parts))
        if placement is None or placement.action != "replace":
            layers[name] = plain[name]
        if placement is not None and placement.action != "swap":
            layers[_module_name(placement)] = _create_module(record, placement)
    network.features = nn.Sequential(layers)
    return network


def _create_module(record: LayerRecord, placement: Placement) -> nn.Module:
    channels = record.spec.module_channels(placement.action)
    return create_attention(placement.module, channels, **placement.config)
