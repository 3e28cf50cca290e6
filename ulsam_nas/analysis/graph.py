"""From a traced graph to what ``Analysis`` keeps: one costed item per operation, the parameters
(each counted once), and the positions where a module can be inserted or replace one."""

from __future__ import annotations

import operator
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx as fx
from torch import nn

import ulsam_nas.analysis.torch_rules  # noqa: F401  (registers the tool's own rules)
from ulsam_nas.analysis.backward import UNKNOWN, backward_values
from ulsam_nas.analysis.rules import call_of, checked, operator_name, rule_for
from ulsam_nas.analysis.trace import ModuleCall, TensorInfo, Traced, contains
from ulsam_nas.cost.cost import UNCOSTED
from ulsam_nas.errors import InvalidInput


@dataclass(frozen=True)
class Item:
    """One costed operation of the traced graph (its compute only; parameters are separate)."""

    node: int  # position in the graph's node order
    path: str  # the module whose forward runs it ('' for the model's own forward)
    scope: tuple[str, ...]  # that module and every module around it
    what: str
    in_shape: tuple[int, ...] | None  # without the batch dimension
    out_shape: tuple[int, ...] | None
    values: dict[tuple[str, str], int]  # ("macs" | "ops" | "train", name) → count
    leaf: str | None  # the path of the leaf module this call runs (None for functions)
    uncosted: bool = False


@dataclass(frozen=True)
class Uncosted:
    """An operation without a closed form (the remainder of a non-strict analysis)."""

    op: str
    path: str
    out_shape: tuple[int, ...] | None

    def text(self) -> str:
        shape = "×".join(map(str, self.out_shape)) if self.out_shape else "no tensor"
        return f"{self.op} at {self.path or '(model)'} (output {shape})"


SHOWN_TYPES = 5  # operator types a remainder summary lists before "… and N more types"


def remainder_lines(remainder: Sequence[Uncosted]) -> list[str]:
    """One line per operator type, most frequent first: "LeakyReLU ×49, first at features.0.2
    (output 32×112×112)"; at most SHOWN_TYPES lines and one saying how many more."""
    by_op: dict[str, list[Uncosted]] = {}
    for u in remainder:
        by_op.setdefault(u.op, []).append(u)
    ranked = sorted(by_op.values(), key=lambda found: -len(found))
    lines = [
        f"{found[0].op} ×{len(found)}, first at {found[0].text().partition(' at ')[2]}" for found in ranked
    ]
    if len(lines) > SHOWN_TYPES:
        more = ranked[SHOWN_TYPES - 1 :]
        rest = ", ".join(found[0].op for found in more)
        lines = [*lines[: SHOWN_TYPES - 1], f"… and {len(more)} more types ({sum(map(len, more))}): {rest}"]
    return lines


class UncostedOperators(InvalidInput):
    """A network with operators that have no closed form, refused: one line per operator type.
    ``text(remedy)`` names how to cost the rest anyway where it is raised from (``strict=False``
    in Python, ``--allow-remainder`` on the command line)."""

    def __init__(self, remainder: Sequence[Uncosted], remedy: str = "strict=False") -> None:
        self.remainder = tuple(remainder)
        super().__init__(self.text(remedy))

    def text(self, remedy: str) -> str:
        kinds = len({u.op for u in self.remainder})
        return "\n".join(
            [
                f"no closed form for {len(self.remainder)} operator(s) of {kinds} type(s):",
                *(f"  {line}" for line in remainder_lines(self.remainder)),
                f"  {remedy} costs the rest and lists these as a remainder, left out of the totals "
                "and marked so",
            ]
        )


@dataclass(frozen=True)
class Param:
    """One parameter tensor, however many names the module tree gives it."""

    names: tuple[str, ...]
    kind: str  # weight, bias (conv/linear), bn, ln, other: the keys of Cost.params_by
    numel: int

    @property
    def owner(self) -> str:
        return self.names[0].rpartition(".")[0]


@dataclass(frozen=True)
class Position:
    """A submodule called once whose output is one N×C×H×W tensor: a module can go after it
    (``insert``) or, where ``replace`` is true, in its place."""

    index: int
    path: str
    what: str  # the submodule's class name
    in_shape: tuple[int, int, int] | None  # its single 4-D input (None: several or not 4-D)
    out_shape: tuple[int, int, int]
    replace: bool
    why_not_replace: str = ""
    # An attention gate: its output is its input times a gate it computes from it (N×C×1×1 or
    # N×1×H×W), like MobileNetV3's SE; ``swap`` replaces it with another module or removes it.
    gate: bool = False
    # Whether its input and its output need gradients in a training step (not where every
    # parameter before it is frozen): a module put there is trained on a value that needs one.
    grad_in: bool = True
    grad_out: bool = True

    def text(self) -> str:
        shape_in = "×".join(map(str, self.in_shape)) if self.in_shape else "-"
        return f"{self.path} ({self.what}, {shape_in} → {'×'.join(map(str, self.out_shape))})"


def _shape(value: Any) -> tuple[int, ...] | None:
    return value.shape[1:] if isinstance(value, TensorInfo) else None


def cost_nodes(
    traced: Traced, model: nn.Module, needs_grad: Mapping[fx.Node, bool]
) -> tuple[list[Item], list[Uncosted]]:
    """Every operation's compute, in graph order, with the backward products a training step
    runs for it (``needs_grad``: which values need a gradient); those without a closed form
    listed apart."""
    items: list[Item] = []
    remainder: list[Uncosted] = []
    for index, node in enumerate(traced.nodes):
        if node.op not in ("call_module", "call_function", "call_method"):
            continue  # placeholders, parameters (get_attr: counted from the tree) and the output
        scope = node.meta.get("scope", ())
        leaf = str(node.target) if node.op == "call_module" else None
        module = model.get_submodule(leaf) if leaf is not None else None
        operator, rule = rule_for(node, module)
        out = node.meta.get("info")
        if module is None and not contains(out, TensorInfo):
            continue  # sizes, Python numbers and comparisons of them cost nothing
        terms = checked(rule(call_of(node, operator, module)), operator) if rule is not None else None
        path = leaf if leaf is not None else (scope[-1] if scope else "")
        what = operator_name(operator)
        inputs = [info(a) for a in (*node.args, *node.kwargs.values())]
        first = next((i for i in inputs if i is not None), None)
        if terms is None:
            remainder.append(Uncosted(what, path, _shape(out)))
            values = {("ops", UNCOSTED): 1, UNKNOWN: 1}  # its backward is unknown too
        elif not terms.values:
            continue  # moves data only
        else:
            values = {key: int(v) for key, v in terms.values.items() if v}
            values = backward_values(values, node, module, needs_grad)
        items.append(Item(index, path, scope, what, _shape(first), _shape(out), values, leaf, terms is None))
    return items, remainder


def info(value: Any) -> TensorInfo | None:
    """The traced tensor behind a graph argument (None for constants and non-tensors)."""
    if isinstance(value, fx.Node):
        found = value.meta.get("info")
        return found if isinstance(found, TensorInfo) else None
    return None


def parameters(model: nn.Module) -> list[Param]:
    """Each parameter tensor once, with all its names (a module registered twice shares them)."""
    names: dict[int, list[str]] = defaultdict(list)
    tensors: dict[int, Any] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        names[id(p)].append(name)
        tensors[id(p)] = p
    return [Param(tuple(names[k]), _param_kind(model, names[k][0]), tensors[k].numel()) for k in names]


def _param_kind(model: nn.Module, name: str) -> str:
    owner_path, _, attribute = name.rpartition(".")
    owner = model.get_submodule(owner_path)
    if isinstance(owner, nn.modules.conv._ConvNd | nn.Linear) and attribute in ("weight", "bias"):
        return attribute
    if isinstance(owner, nn.modules.batchnorm._BatchNorm):
        return "bn"
    if isinstance(owner, nn.LayerNorm):
        return "ln"
    return "other"


def within(names: tuple[str, ...], path: str) -> bool:
    """Whether every name of a parameter lies inside module ``path`` (so that replacing the
    module removes the parameter from the network)."""
    return all(n.startswith(path + ".") for n in names)


def _proxies(value: Any) -> Iterator[fx.Node]:
    if isinstance(value, fx.Proxy):
        yield value.node
    elif isinstance(value, tuple | list):
        for v in value:
            yield from _proxies(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _proxies(v)


def _image(value: Any) -> tuple[int, int, int] | None:
    found = info(value) if isinstance(value, fx.Node) else None
    if found is None or len(found.shape) != 4 or found.shape[0] != 1:
        return None
    return (found.shape[1], found.shape[2], found.shape[3])


def find_positions(
    model: nn.Module, traced: Traced, needs_grad: Mapping[fx.Node, bool]
) -> tuple[list[Position], dict[str, str]]:
    """Positions in network order (order of the calls), and why each other called submodule
    is not one (for error messages)."""
    calls = Counter(call.path for call in traced.calls)
    registered = Counter(id(m) for _, m in model.named_modules(remove_duplicate=False))
    positions: list[Position] = []
    not_positions: dict[str, str] = {}
    for call in traced.calls:
        if call.path in not_positions:
            continue
        why = _why_not_position(call, calls[call.path], registered[id(call.module)])
        if why:
            not_positions[call.path] = why
            continue
        out_node = call.output.node
        out = _image(out_node)
        assert out is not None
        inputs = list(_proxies((call.args, call.kwargs)))
        shape_in = _image(inputs[0]) if len(inputs) == 1 else None
        why_not = _why_not_replace(call, traced, inputs, shape_in, out)
        gate = not why_not and _is_gate(call, traced, inputs[0])
        what = type(call.module).__name__
        grads = {
            "grad_in": len(inputs) == 1 and needs_grad.get(inputs[0], False),
            "grad_out": needs_grad.get(out_node, False),
        }
        positions.append(
            Position(len(positions), call.path, what, shape_in, out, not why_not, why_not, gate, **grads)
        )
    return positions, not_positions


def _why_not_position(call: ModuleCall, calls: int, names: int) -> str:
    if not call.path:
        return "it is the model itself"
    if calls > 1:
        return f"it is called {calls} times"
    if names > 1:
        return f"the same module is registered under {names} names"
    if not isinstance(call.output, fx.Proxy) or _image(call.output.node) is None:
        found = info(call.output.node) if isinstance(call.output, fx.Proxy) else None
        shape = "×".join(map(str, found.shape)) if found else "not one tensor"
        return f"its output is not one 1×C×H×W tensor ({shape})"
    return ""


def _is_gate(call: ModuleCall, traced: Traced, given: fx.Node) -> bool:
    """Whether the call's output is ``given × gate``, the gate computed inside the call and
    broadcast over the spatial or the channel axis (an SE, ECA or spatial gate)."""
    output = call.output.node
    multiply = (output.op == "call_function" and output.target in (operator.mul, torch.mul)) or (
        output.op == "call_method" and output.target == "mul"
    )
    if not multiply or len(output.args) != 2:
        return False
    others = [a for a in output.args if a is not given]
    if len(others) != 1 or not isinstance(others[0], fx.Node):
        return False
    gate, image = info(others[0]), info(given)
    if gate is None or image is None or len(gate.shape) != 4:
        return False
    inside = set(traced.nodes[call.first_node : call.end_node])
    _, c, h, w = image.shape
    if others[0] not in inside or gate.shape[1:] not in ((c, 1, 1), (1, h, w)) or (h, w) == (1, 1):
        return False
    # The gate is computed from the input (a learnt constant scale, like LayerScale, is no gate).
    pending, seen = [others[0]], set()
    while pending:
        node = pending.pop()
        if node is given:
            return True
        seen.add(node)
        pending += [n for n in node.all_input_nodes if n not in seen and (n in inside or n is given)]
    return False


def _why_not_replace(
    call: ModuleCall,
    traced: Traced,
    inputs: list[fx.Node],
    shape_in: tuple[int, int, int] | None,
    out: tuple[int, int, int],
) -> str:
    size = "×".join
    if len(inputs) != 1:
        return f"it takes {len(inputs)} tensor inputs"
    if shape_in is None:
        return "its input is not one 1×C×H×W tensor"
    if shape_in != out:
        return f"its input is {size(map(str, shape_in))} and its output {size(map(str, out))}"
    output = call.output.node
    for node in traced.nodes[call.first_node : call.end_node]:
        if node is output:
            continue
        for user in node.users:
            if call.path not in user.meta.get("scope", ()):
                return f"a value computed inside it is used outside it (by {user.name})"
    return ""
