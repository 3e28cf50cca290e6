"""Built-in backbones: MobileNetV1/V2/V3 and ResNet-18 (architecture tables + one builder),
attention placement plans, and whole-network closed-form costs."""

from ulsam_nas.backbones.breakdown import network_breakdown
from ulsam_nas.backbones.network import (
    BACKBONES,
    STEMS,
    BackboneShape,
    BackboneTable,
    backbone_table,
    create_network,
    network_cost,
    resolve_plan,
)
from ulsam_nas.networks.plan import Placement, parse_plan, plan_text

__all__ = [
    "BACKBONES",
    "STEMS",
    "BackboneShape",
    "BackboneTable",
    "Placement",
    "backbone_table",
    "create_network",
    "network_breakdown",
    "network_cost",
    "parse_plan",
    "plan_text",
    "resolve_plan",
]
