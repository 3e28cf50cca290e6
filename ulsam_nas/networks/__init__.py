"""One network core: placement plans (one grammar), the :class:`Network` protocol every source
of positions implements (built-in tables, traced models), the plan arithmetic written once, and
costs of whole arrays of configurations."""

from ulsam_nas.networks.core import Network, Row, plan_cost
from ulsam_nas.networks.plan import Placement, parse_plan, plan_text

__all__ = ["Network", "Placement", "Row", "parse_plan", "plan_cost", "plan_text"]
