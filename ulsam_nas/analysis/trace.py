"""One symbolic trace of a user's network: the torch.fx graph, the shape of every value, and
every module call (its path, inputs, output and the span of graph nodes it created).

Every node is tagged with the stack of module calls it was created under (``meta["scope"]``):
the paths of the module whose forward made it and of all modules around that one.  fx's own
``nn_module_stack`` names a module shared by two parents by its first name only; the stack of
*calls* still holds the parent that made this call, which is what subtracting a replaced
module's subtree needs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
import torch.fx as fx
from torch import nn

from ulsam_nas.attention import get_attention, list_attention
from ulsam_nas.errors import InvalidInput


class TensorInfo(NamedTuple):
    """What costing needs of a traced tensor (batch dimension included)."""

    shape: tuple[int, ...]
    contiguous: bool

    @property
    def numel(self) -> int:
        total = 1
        for size in self.shape:
            total *= size
        return total


@dataclass
class ModuleCall:
    """One call of a submodule during tracing."""

    path: str
    module: nn.Module
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    first_node: int  # graph nodes [first_node, end_node) were created during this call
    end_node: int = -1
    output: Any = None


@dataclass
class Traced:
    graph: fx.Graph
    nodes: list[fx.Node]
    calls: list[ModuleCall]
    leaf_attention: dict[str, nn.Module] = field(default_factory=dict)  # path → untraceable module


class _TraceFailure(Exception):
    """A module fx cannot trace; carries the innermost failing module's path outwards."""

    def __init__(self, path: str, module: nn.Module, error: Exception) -> None:
        super().__init__(path)
        self.path, self.module, self.error = path, module, error


class _Tracer(fx.Tracer):
    def __init__(self, leaves: set[int]) -> None:
        super().__init__()
        self.leaves = leaves
        self.call_stack: list[str] = []
        self.module_calls: list[ModuleCall] = []
        self.nodes_created = 0

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return id(m) in self.leaves or super().is_leaf_module(m, module_qualified_name)

    def call_module(self, m: nn.Module, forward: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        path = self.path_of_module(m)
        call = ModuleCall(path, m, args, kwargs, self.nodes_created)
        self.module_calls.append(call)
        self.call_stack.append(path)
        try:
            call.output = super().call_module(m, forward, args, kwargs)
        except _TraceFailure:
            raise
        except Exception as error:  # the innermost module names the failure; outer ones pass it on
            raise _TraceFailure(path, m, error) from None
        finally:
            self.call_stack.pop()
        call.end_node = self.nodes_created
        return call.output

    def create_node(self, *args: Any, **kwargs: Any) -> fx.Node:
        node = super().create_node(*args, **kwargs)
        node.meta["scope"] = tuple(self.call_stack)
        self.nodes_created += 1
        return node


def _attention_classes() -> tuple[type[nn.Module], ...]:
    classes = (get_attention(k).module_cls for k in list_attention())
    return tuple(cls for cls in classes if isinstance(cls, type) and issubclass(cls, nn.Module))


def untraceable_attention(model: nn.Module) -> dict[str, nn.Module]:
    """Registered attention modules fx cannot trace through (SimAM's ``max`` of a size): they are
    kept as leaves and costed by their closed form."""
    classes = _attention_classes()
    found: dict[str, nn.Module] = {}
    for path, module in model.named_modules():
        if path and isinstance(module, classes):
            try:
                fx.symbolic_trace(module)
            except Exception:  # any failure: costed as a whole instead
                found[path] = module
    return found


def trace(model: nn.Module, input_size: tuple[int, int, int]) -> Traced:
    """Trace ``model`` (already in eval mode) and run it once on a batch-1 input, recording the
    shape of every value."""
    leaf_attention = untraceable_attention(model)
    tracer = _Tracer({id(m) for m in leaf_attention.values()})
    try:
        graph = tracer.trace(model)
    except _TraceFailure as failure:
        raise InvalidInput(_trace_message(failure.path, failure.module, failure.error)) from None
    except Exception as error:
        raise InvalidInput(_trace_message("", model, error)) from None
    module = fx.GraphModule(tracer.root, graph)
    _propagate_shapes(module, input_size, model)
    return Traced(graph, list(graph.nodes), tracer.module_calls, leaf_attention)


def _trace_message(path: str, module: nn.Module, error: Exception) -> str:
    where = (
        f"module {path!r} ({type(module).__name__})"
        if path
        else f"the model's forward ({type(module).__name__})"
    )
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return (
        f"torch.fx cannot trace {where}: {reason}; analyze needs a forward without data-dependent "
        "control flow"
    )


class _Shapes(fx.Interpreter):
    """Runs the graph on a real tensor and records each value's shape (fx's ShapeProp prints a
    traceback on failure; this one lets the caller name the failing module)."""

    current: fx.Node | None = None

    def run_node(self, n: fx.Node) -> Any:
        self.current = n
        result = super().run_node(n)
        n.meta["info"] = describe(result)
        if result is None or isinstance(result, bool | int | float | str):
            n.meta["value"] = result  # a traced argument's value (a mask that is None, a flag)
        return result


def describe(value: Any) -> Any:
    """A TensorInfo for a tensor, the same structure for tuples and lists, None otherwise."""
    if isinstance(value, torch.Tensor):
        return TensorInfo(tuple(value.shape), value.is_contiguous())
    if isinstance(value, tuple | list):
        return tuple(describe(v) for v in value)
    return None


def _propagate_shapes(module: fx.GraphModule, input_size: tuple[int, int, int], model: nn.Module) -> None:
    # The input takes the model's own dtype and device (its values do not matter: only shapes do).
    first = next((p for p in model.parameters() if p.is_floating_point()), None)
    dtype, device = (first.dtype, first.device) if first is not None else (torch.float32, torch.device("cpu"))
    x = torch.randn(1, *input_size, generator=torch.Generator().manual_seed(0), dtype=dtype).to(device)
    interpreter = _Shapes(module)
    try:
        with torch.no_grad():
            interpreter.run(x)
    except Exception as error:
        node = interpreter.current
        scope = node.meta.get("scope", ()) if node is not None else ()
        where = f" in module {scope[-1]!r}" if scope else ""
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        size = "×".join(map(str, input_size))
        raise InvalidInput(f"the model fails on a {size} input{where}: {reason}") from None


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """The model in eval mode for the trace (dropout off, BatchNorm on running statistics: what
    every counter is run under), each module's own mode restored afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training
