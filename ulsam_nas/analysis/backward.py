"""A traced network's training step: which values need a gradient, and so which backward products
each costed operation runs.

Autograd computes a product's input gradient only where that input needs one, and a weight's only
where the weight is trained: a network's image needs none, nor does any value computed only from
it and frozen parameters (``requires_grad=False``), a ``detach``ed value or an integer tensor.
The rules cost every product as if all its operands needed gradients (the closed forms'
``train`` terms); here each traced call keeps the products its operands call for.  A call whose
rule gave MACs but no backward terms (a rule registered without them), or attention with some of
Q, K, V needing gradients and some not, has no closed form of its backward: the network's
training step is then unknown (``Cost.train_by`` None), never counted short.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from ulsam_nas.analysis.trace import TensorInfo, Traced, attribute
from ulsam_nas.cost.cost import GROUPED_WEIGHT_EXTRA, MAC_KINDS

# An Item's value under this key (kind "train") marks a backward without a closed form.
UNKNOWN = ("train", "unknown")

# Calls whose result never carries a gradient whatever their inputs.
_DETACHING = {"detach", "detach_", "argmax", "argmin", "sign", "round", "floor", "ceil", "trunc"}


def gradient_flags(traced: Traced, model: nn.Module) -> dict[fx.Node, bool]:
    """For every graph node, whether its value needs a gradient in a training step."""
    flags: dict[fx.Node, bool] = {}
    for node in traced.nodes:
        inputs = any(flags.get(n, False) for n in node.all_input_nodes)
        info = node.meta.get("info")
        floating = not isinstance(info, TensorInfo) or info.floating
        if node.op == "placeholder":
            flags[node] = False
        elif node.op == "get_attr":
            value = attribute(model, str(node.target))
            flags[node] = isinstance(value, torch.Tensor) and value.requires_grad
        elif node.op == "call_module":
            module = model.get_submodule(str(node.target))
            flags[node] = floating and (inputs or any(p.requires_grad for p in module.parameters()))
        elif node.op in ("call_function", "call_method"):
            name = str(node.target) if node.op == "call_method" else getattr(node.target, "__name__", "")
            flags[node] = floating and inputs and name not in _DETACHING
        else:
            flags[node] = inputs
    return flags


def _needs(value: Any, flags: Mapping[fx.Node, bool]) -> bool:
    return isinstance(value, fx.Node) and flags.get(value, False)


def _arg(node: fx.Node, index: int, name: str) -> Any:
    if name in node.kwargs:
        return node.kwargs[name]
    return node.args[index] if len(node.args) > index else None


def backward_values(
    values: dict[tuple[str, str], int],
    node: fx.Node,
    module: nn.Module | None,
    flags: Mapping[fx.Node, bool],
) -> dict[tuple[str, str], int]:
    """``values`` (a call's costed terms, its rule's backward assuming every operand needs a
    gradient) with only the backward products this call runs in a training step."""
    macs = {kind for (k, kind), v in values.items() if k == "macs" and v}
    if not macs:
        return values
    train = {name for (k, name), v in values.items() if k == "train"}
    if any(f"{kind}_grad" not in train and not _has_both(kind, train) for kind in macs if kind in MAC_KINDS):
        return {**values, UNKNOWN: 1}  # MACs without a closed form of their backward
    data = next((a for a in (*node.args, *node.kwargs.values()) if isinstance(a, fx.Node)), None)
    gives_input = _needs(data, flags)
    if module is not None and not isinstance(module, nn.modules.conv._ConvNd | nn.Linear):
        return _whole_module(values, module, gives_input)
    out = dict(values)
    if macs & {"conv", "linear"}:
        weight = module.weight if module is not None else _arg(node, 1, "weight")
        trained = weight.requires_grad if isinstance(weight, torch.Tensor) else _needs(weight, flags)
        for kind in ("conv", "linear"):
            if not gives_input:
                out.pop(("train", f"{kind}_grad_input"), None)
            if not trained:
                out.pop(("train", f"{kind}_grad_weight"), None)
        if not trained:
            out.pop(("train", GROUPED_WEIGHT_EXTRA), None)
    if "matmul" in macs:  # a product of two operands (matmul, bmm, @, a two-operand einsum)
        operands = _nodes((node.args, node.kwargs))
        if len(operands) != 2:
            return {**out, UNKNOWN: 1}
        operands_needing = sum(_needs(a, flags) for a in operands)
        out[("train", "matmul_grad")] = values[("macs", "matmul")] * operands_needing
    for kind in ("attention", "attention_math"):
        if kind in macs:
            needing = [_needs(_arg(node, i, n), flags) for i, n in enumerate(("query", "key", "value"))]
            if not any(needing):
                out.pop(("train", f"{kind}_grad"), None)
            elif not all(needing):
                out[UNKNOWN] = 1
    return {key: v for key, v in out.items() if v}


def _nodes(value: Any) -> list[fx.Node]:
    """The graph nodes among a call's arguments, in order, repeats kept (``x @ x``)."""
    if isinstance(value, fx.Node):
        return [value]
    if isinstance(value, tuple | list):
        return [n for v in value for n in _nodes(v)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _nodes(v)]
    return []


def _has_both(kind: str, train: set[str]) -> bool:
    return f"{kind}_grad_input" in train and f"{kind}_grad_weight" in train


def _whole_module(
    values: dict[tuple[str, str], int], module: nn.Module, gives_input: bool
) -> dict[tuple[str, str], int]:
    """A module costed as one operation (an attention module fx cannot trace through): its
    closed form's backward holds where its input needs a gradient and its weights are trained."""
    if gives_input and all(p.requires_grad for p in module.parameters()):
        return values
    return {**values, UNKNOWN: 1}
