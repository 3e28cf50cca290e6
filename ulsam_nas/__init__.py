"""ulsam-nas: exact costs of attention modules and MobileNets, and a budget-constrained search
for where ULSAM goes."""

from ulsam_nas.analysis import Call, analyze, register_rule
from ulsam_nas.analysis.source import load_model
from ulsam_nas.attention import (
    attention_cost,
    attention_formula,
    create_attention,
    get_attention,
    list_attention,
)
from ulsam_nas.backbones import Placement, create_network, network_breakdown, network_cost
from ulsam_nas.cost import Cost, Formula
from ulsam_nas.errors import InvalidInput
from ulsam_nas.reporting import report

__version__ = "0.1.0"

__all__ = [
    "Call",
    "Cost",
    "Formula",
    "InvalidInput",
    "Placement",
    "analyze",
    "attention_cost",
    "attention_formula",
    "create_attention",
    "create_network",
    "get_attention",
    "list_attention",
    "load_model",
    "network_breakdown",
    "network_cost",
    "register_rule",
    "report",
]
