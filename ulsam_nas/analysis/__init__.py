"""Exact closed-form costs of any traceable network (``analyze``), its positions, and plans that
insert or replace attention modules at module paths."""

from ulsam_nas.analysis.analysis import Analysis, analyze
from ulsam_nas.analysis.build import WithAttention
from ulsam_nas.analysis.graph import UNCOSTED, Position, Uncosted
from ulsam_nas.analysis.rules import Call, register_rule

__all__ = [
    "UNCOSTED",
    "Analysis",
    "Call",
    "Position",
    "Uncosted",
    "WithAttention",
    "analyze",
    "register_rule",
]
