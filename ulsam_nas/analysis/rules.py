"""The rule hook: what each traced operation costs, keyed on the operator it runs.

A rule takes a :class:`Call` (one traced call: its operator, its arguments with every tensor
described by its shape, its output) and returns the call's compute as :class:`Terms` in the
closed forms' own units (MAC kinds of ``MAC_KINDS``, element counts of ``OP_UNITS``), or None
when it has no closed form for that call (the call is then part of the remainder: never 0).
Parameters are not a rule's business: they are counted once per tensor from the module tree.

``register_rule(operator, rule)`` keys a rule on

* an ``nn.Module`` subclass: every call of a module of exactly that class is one operation (its
  forward is not traced through; torch's own modules are single operations anyway, and one
  without a rule of its own takes its nearest base class's, as ``nn.ReLU6`` would take
  ``nn.Hardtanh``'s);
* a function (``torch.erf``, ``F.linear``, a function of yours wrapped with ``torch.fx.wrap``);
* a tensor method (``torch.Tensor.erf``: the call ``x.erf()`` as well as ``torch.Tensor.erf(x)``);
* a function's qualified name (``"torchvision.ops.stochastic_depth.stochastic_depth"``), for a
  library that cannot be imported where the rule is registered.

The tool's own rules (``torch_rules``) are registered through the same function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from ulsam_nas.analysis.trace import TensorInfo
from ulsam_nas.cost.cost import GROUPED_WEIGHT_EXTRA, MAC_KINDS, OP_UNITS, TRAIN_UNITS, Terms
from ulsam_nas.errors import InvalidInput


@dataclass(frozen=True)
class Call:
    """One traced call as a rule sees it.  ``args``/``kwargs`` are as written in the call, with
    each tensor replaced by its :class:`TensorInfo` (batch dimension included) and each value
    the trace computed by that value (sizes as :class:`TracedInt`)."""

    operator: Any  # the module's class, the function, or "Tensor.<method>"
    module: nn.Module | None  # the module called (module calls only)
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    out: Any  # a TensorInfo; a tuple of them for several outputs; None for no tensor
    kernel: str | None = None  # the kernel torch chose, where that decides what counters see

    def arg(self, index: int, name: str, default: Any = None) -> Any:
        """An argument given by position or by name (``default`` when absent)."""
        if name in self.kwargs:
            return self.kwargs[name]
        return self.args[index] if len(self.args) > index else default

    @property
    def input(self) -> TensorInfo | None:
        """The first tensor argument."""
        return next((a for a in (*self.args, *self.kwargs.values()) if isinstance(a, TensorInfo)), None)


Rule = Callable[[Call], "Terms | None"]
TRAIN_TERMS = (*TRAIN_UNITS, GROUPED_WEIGHT_EXTRA)

_RULES: dict[Any, Rule] = {}


def register_rule(operator: Any, rule: Rule) -> Rule | None:
    """Cost every call of ``operator`` by ``rule`` (see the module's text); returns the rule it
    replaces, if any, so that a test or a caller can put it back."""
    if not callable(rule):
        raise InvalidInput(f"rule={rule!r} is not callable; allowed: a function of one Call")
    keys = _keys(operator)
    previous = _RULES.get(keys[0])
    for key in keys:
        _RULES[key] = rule
    return previous


def _keys(operator: Any) -> tuple[Any, ...]:
    if isinstance(operator, str) and "." in operator:  # "Tensor.erf" or "package.module.function"
        return (operator,)
    if isinstance(operator, type):
        if not issubclass(operator, nn.Module):
            raise InvalidInput(f"operator={operator.__name__} is a class but not an nn.Module")
        return (operator,)
    name = getattr(operator, "__name__", None)
    if isinstance(name, str) and getattr(torch.Tensor, name, None) is operator:
        return (f"Tensor.{name}", operator)  # x.erf() and torch.Tensor.erf(x)
    if callable(operator):
        return (operator,)
    raise InvalidInput(
        f"operator={operator!r} is invalid; allowed: an nn.Module class, a function, a tensor "
        "method such as torch.Tensor.erf, or a function's qualified name"
    )


def has_module_rule(cls: type) -> bool:
    """Whether calls of modules of exactly this class are costed as one operation (a leaf)."""
    return cls in _RULES


def rule_for(node: fx.Node, module: nn.Module | None) -> tuple[Any, Rule | None]:
    """The operator a call_module/call_function/call_method node runs, and its rule."""
    if module is not None:
        rule = next((_RULES[c] for c in type(module).__mro__ if c in _RULES), None)
        return type(module), rule
    if node.op == "call_method":
        key = f"Tensor.{node.target}"
        return key, _RULES.get(key)
    try:
        rule = _RULES.get(node.target)
    except TypeError:  # an unhashable callable
        rule = None
    return node.target, rule or _RULES.get(_qualified_name(node.target))


def _qualified_name(function: Any) -> str:
    return f"{getattr(function, '__module__', '')}.{getattr(function, '__qualname__', '')}"


def call_of(node: fx.Node, operator: Any, module: nn.Module | None) -> Call:
    args, kwargs = _resolve(node.args), _resolve(dict(node.kwargs))
    return Call(operator, module, args, kwargs, node.meta.get("info"), node.meta.get("kernel"))


def _resolve(value: Any) -> Any:
    if isinstance(value, fx.Node):
        found = value.meta.get("info")
        if isinstance(found, TensorInfo) or "value" not in value.meta:
            return found
        return value.meta["value"]
    if isinstance(value, list):
        return [_resolve(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_resolve(v) for v in value)
    if isinstance(value, dict):
        return {k: _resolve(v) for k, v in value.items()}
    return value


def checked(terms: Terms | None, operator: Any) -> Terms | None:
    """A rule's answer, refused in one line if it speaks of a unit no counter convention knows
    (a registered rule's typo must not become a silently uncounted term)."""
    if terms is None:
        return None
    if not isinstance(terms, Terms):
        raise InvalidInput(
            f"the rule for {operator_name(operator)} returned {terms!r}; allowed: Terms or None"
        )
    for (kind, unit), value in terms.values.items():
        known = {"macs": MAC_KINDS, "ops": tuple(OP_UNITS), "train": TRAIN_TERMS}.get(kind, ())
        if unit not in known:
            raise InvalidInput(
                f"the rule for {operator_name(operator)} returned the unit {kind}:{unit}; "
                f"allowed: macs:{'|'.join(MAC_KINDS)}, ops:<a key of OP_UNITS> or "
                f"train:{'|'.join(TRAIN_TERMS)}"
            )
        if not isinstance(value, int) or value < 0:
            raise InvalidInput(f"the rule for {operator_name(operator)} returned {kind}:{unit}={value!r}")
    return terms


def operator_name(operator: Any) -> str:
    """How the remainder and errors name an operator: ``Conv2d``, ``torch.tanh``, ``Tensor.tanh``,
    ``operator.neg``, ``F.gelu``."""
    if isinstance(operator, str):
        return operator
    if isinstance(operator, type):
        return operator.__name__
    module = getattr(operator, "__module__", None) or ""
    name = getattr(operator, "__name__", str(operator))
    module = {"torch.nn.functional": "F", "_operator": "operator"}.get(module, module)
    return f"{module}.{name}" if module else name
