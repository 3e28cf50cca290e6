"""One trace of a user's network at one input size: the torch.fx graph, the shape of every
value, and every module call (its path, inputs, output and the span of graph nodes it created).

Every node is tagged with the stack of module calls it was created under (``meta["scope"]``):
the paths of the module whose forward made it and of all modules around that one.  fx's own
``nn_module_stack`` names a module shared by two parents by its first name only; the stack of
*calls* still holds the parent that made this call, which is what subtracting a replaced
module's subtree needs.
"""

from __future__ import annotations

import contextlib
import inspect
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend
from torch.overrides import TorchFunctionMode

from ulsam_nas.attention import get_attention, list_attention
from ulsam_nas.errors import InvalidInput


class TensorInfo(NamedTuple):
    """What costing needs of a traced tensor (batch dimension included)."""

    shape: tuple[int, ...]
    contiguous: bool
    floating: bool = True  # a floating-point (or complex) tensor: one that can carry a gradient

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
    """Raised while tracing; carries the innermost failing module's path outwards."""

    def __init__(self, path: str, module: nn.Module, error: Exception) -> None:
        super().__init__(path)
        self.path, self.module, self.error = path, module, error


class _BranchOnValues(Exception):
    """The forward asked for a concrete value computed from tensor data (``if x.sum() > 0``)."""


class _RunFailure(Exception):
    """An operation failed on the example input (a wrong channel count, a bad reshape)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(_first_line(error))


class TracedInt(int):
    """A size the trace read from a tensor (``x.shape[2]``), not a constant of the code:
    ``F.adaptive_avg_pool2d(x, (x.shape[2], 1))`` keeps the input's height by construction,
    even where that height is 1."""


# Reading these gives a tensor's layout, never its data: they are answered at once with the
# example's values (sizes as TracedInt), so code may compute with them, branch on them and pass
# them to torch (``torch.zeros(b, h, w)``, ``torch.autocast(device_type=x.device.type)``).
_LAYOUT_ATTRIBUTES = frozenset({"shape", "dtype", "device", "ndim", "is_cuda", "layout", "requires_grad"})
_LAYOUT_METHODS = frozenset(
    {"size", "dim", "numel", "nelement", "is_contiguous", "is_floating_point", "stride", "get_device"}
)


def _sizes(value: Any) -> Any:
    if isinstance(value, torch.Size):
        return torch.Size([TracedInt(size) for size in value])
    return TracedInt(value) if type(value) is int else value


class _Proxy(fx.Proxy):
    """An fx proxy that knows its value on the example input, so that Python code asking for a
    size, a length or a branch on sizes gets a concrete answer (the trace is specialised to the
    input shape, as a counter's run is)."""

    tracer: _Tracer

    def __getattr__(self, name: str) -> Any:
        if name in _LAYOUT_ATTRIBUTES:
            with self.tracer.real():
                return _sizes(getattr(self.tracer.concrete(self, name, data_allowed=True), name))
        if name in _LAYOUT_METHODS:
            method = getattr(self.tracer.concrete(self, name, data_allowed=True), name)
            return lambda *args, **kwargs: self.tracer.real_call(lambda: _sizes(method(*args, **kwargs)))
        return _Attribute(self, name)

    def __len__(self) -> int:
        with self.tracer.real():
            return len(self.tracer.concrete(self, "len()", data_allowed=True))

    def __iter__(self) -> Iterator[fx.Proxy]:
        return iter([self[i] for i in range(len(self))])  # type: ignore[index]

    def __index__(self) -> int:
        return self.tracer.real_call(lambda: operator.index(self.tracer.concrete(self, "an index from")))

    def __int__(self) -> int:
        return self.tracer.real_call(lambda: int(self.tracer.concrete(self, "int() of")))

    def __float__(self) -> float:
        return self.tracer.real_call(lambda: float(self.tracer.concrete(self, "float() of")))


class _Attribute(fx.proxy.Attribute, _Proxy):
    pass


class _RecordEveryCall(TorchFunctionMode):
    """With sizes concrete, ``torch.zeros(b, h, w)`` or ``torch.arange(h)`` in a forward would
    run once and become a constant, and the work done on it (a position encoding, a mask)
    would vanish from the count: every torch call the traced code makes is recorded, not only
    those on proxies.  The tracer's own runs of operations pass straight through."""

    def __init__(self, tracer: _Tracer) -> None:
        super().__init__()
        self.tracer = tracer

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if (
            self.tracer.running
            or contains((args, kwargs), fx.Proxy)
            or getattr(func, "__name__", "") == "__get__"
        ):
            return func(*args, **kwargs)  # a real run, fx's own proxy path, or a property read
        if torch.overrides.is_tensor_method_or_property(func):
            return self.tracer.create_proxy("call_method", func.__name__, args, kwargs)
        return self.tracer.create_proxy("call_function", func, args, kwargs)


def contains(value: Any, kind: type) -> bool:
    """Whether ``value``, or anything in its tuples, lists and dicts, is a ``kind``."""
    if isinstance(value, kind):
        return True
    if isinstance(value, tuple | list):
        return any(contains(v, kind) for v in value)
    if isinstance(value, dict):
        return any(contains(v, kind) for v in value.values())
    return False


class _Tracer(fx.Tracer):
    """fx's tracer, recording each module call, running every operation on the example input as
    it records it.

    Why this level: at fx's level an operation is still what the code called (``F.linear``,
    ``nn.AdaptiveAvgPool2d``, ``torch.mean``), which is what fvcore's counts are keyed on, and the
    graph's edges say which values leave a module (``find_positions``).  ATen-level traces
    (make_fx, torch.export, a dispatch mode) also follow shape-dependent code, but they turn a
    linear layer into ``addmm`` or ``mm`` + ``add`` and a global pool into ``mean`` and lose
    which counter convention applies (reports/zoo-tracing.md measures both).  Running each
    operation as it is recorded gives fx the one thing it lacked: concrete sizes, so control
    flow on shapes traces; control flow on values is refused (``_BranchOnValues``)."""

    def __init__(self, leaves: set[int], whole: Callable[[type], bool], example: torch.Tensor) -> None:
        super().__init__()
        self.proxy_buffer_attributes = True  # buffers are traced values too (their uses are nodes)
        self.leaves = leaves
        self.whole = whole
        self.attention = _attention_classes()
        self.example = example
        self.call_stack: list[str] = []
        self.module_calls: list[ModuleCall] = []
        self.nodes_created = 0
        self.values: dict[fx.Node, Any] = {}
        self.on_data: set[fx.Node] = set()  # nodes whose value depends on tensor data
        self.running = 0  # > 0 while an operation runs for real: modules are called, not traced

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return _Proxy(node, self)

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if id(m) in self.leaves or super().is_leaf_module(m, module_qualified_name):
            return True
        return self.whole(type(m)) and not isinstance(m, self.attention)

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict[str, Any]) -> Any:
        if self.running:
            return attr_val
        return super().getattr(attr, attr_val, parameter_proxy_cache)

    def call_module(self, m: nn.Module, forward: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.running:
            return forward(*args, **kwargs)
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
        value = self._run(node)
        self.values[node] = value
        with self.real():
            node.meta["info"] = describe(value)
            if not contains(value, torch.Tensor):
                node.meta["value"] = value  # a traced argument's value (a size, a mask that is None)
            if contains(value, torch.Tensor) or any(n in self.on_data for n in node.all_input_nodes):
                self.on_data.add(node)
        return node

    @contextlib.contextmanager
    def real(self) -> Iterator[None]:
        """The tracer's own work on real tensors: not recorded, modules called, not traced."""
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1

    def real_call(self, function: Callable[[], Any]) -> Any:
        with self.real():
            return function()

    def _run(self, node: fx.Node) -> Any:
        args, kwargs = self._real(node.args), self._real(node.kwargs)
        if node.op == "placeholder":
            if not self.values:
                return self.example
            if not args or args[0] is inspect.Parameter.empty:
                raise TypeError(
                    f"the forward's argument {node.target!r} needs a value: analyze passes one image"
                )
            return args[0]
        if node.op == "output":
            return None
        try:
            with self.real(), torch.no_grad():
                if node.op == "get_attr":
                    return attribute(self.root, str(node.target))
                if node.op == "call_function":
                    if node.target is F.scaled_dot_product_attention:
                        node.meta["kernel"] = attention_kernel(args, kwargs)
                    return node.target(*args, **kwargs)  # type: ignore[operator]
                if node.op == "call_method":
                    return getattr(args[0], str(node.target))(*args[1:], **kwargs)
                return self.root.get_submodule(str(node.target))(*args, **kwargs)
        except Exception as error:
            raise _RunFailure(error) from None

    def _real(self, value: Any) -> Any:
        if isinstance(value, fx.Node):
            return self.values[value]
        if isinstance(value, list):
            return [self._real(v) for v in value]
        if isinstance(value, tuple):
            items = [self._real(v) for v in value]
            return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
        if isinstance(value, dict):
            return {k: self._real(v) for k, v in value.items()}
        if isinstance(value, slice):
            return slice(self._real(value.start), self._real(value.stop), self._real(value.step))
        return value

    def concrete(self, proxy: fx.Proxy, what: str, data_allowed: bool = False) -> Any:
        node = proxy.node
        if not data_allowed and node in self.on_data:
            raise _BranchOnValues(f"{what} a value computed from tensor data")
        return self.values[node]

    def to_bool(self, obj: fx.Proxy) -> bool:
        return self.real_call(lambda: bool(self.concrete(obj, "a branch on")))

    def keys(self, obj: fx.Proxy) -> Any:
        return self.real_call(lambda: self.concrete(obj, "the keys", data_allowed=True).keys())


def attention_kernel(args: Any, kwargs: Any) -> str | None:
    """The kernel torch picks for this ``scaled_dot_product_attention`` call ("FLASH_ATTENTION",
    "MATH", ...), asked of torch itself: its choice depends on shapes, strides, the mask and
    whether it requires grad, and decides what the counters see (a fused kernel has no formula in
    torch's counter on the CPU; the math fallback runs two ``bmm``).  None if torch cannot say."""
    try:
        choice = torch._fused_sdp_choice(*args, **kwargs)
        return SDPBackend(choice).name
    except Exception:  # a private function: absent or changed in another torch
        return None


def attribute(root: nn.Module, dotted: str) -> Any:
    """``root``'s attribute at a dotted path (``layer1.0.conv.weight``)."""
    value: Any = root
    for name in dotted.split("."):
        value = getattr(value, name)
    return value


def _attention_classes() -> tuple[type[nn.Module], ...]:
    classes = (get_attention(k).module_cls for k in list_attention())
    return tuple(cls for cls in classes if isinstance(cls, type) and issubclass(cls, nn.Module))


def untraceable_attention(model: nn.Module) -> dict[str, nn.Module]:
    """Registered attention modules plain fx cannot trace through (SimAM's ``max`` of a size):
    kept as leaves and costed by their closed form, as they always were."""
    classes = _attention_classes()
    found: dict[str, nn.Module] = {}
    for path, module in model.named_modules():
        if path and isinstance(module, classes):
            try:
                fx.symbolic_trace(module)
            except Exception:  # any failure: costed as a whole instead
                found[path] = module
    return found


def trace(
    model: nn.Module, input_size: tuple[int, int, int], whole: Callable[[type], bool] = lambda cls: False
) -> Traced:
    """Trace ``model`` (already in eval mode) on a batch-1 input of ``input_size``, recording the
    shape of every value.  ``whole``: module classes called as one operation, not traced through
    (those with a rule of their own; registered attention modules are traced through where fx can)."""
    leaf_attention = untraceable_attention(model)
    leaves = {id(m) for m in leaf_attention.values()}
    tracer = _Tracer(leaves, whole, _example_input(model, input_size))
    attributes = set(vars(model))
    try:
        with _RecordEveryCall(tracer):
            graph = tracer.trace(model)
    except _TraceFailure as failure:
        raise InvalidInput(
            _failure_message(failure.path, failure.module, failure.error, input_size)
        ) from None
    except Exception as error:
        raise InvalidInput(_failure_message("", model, error, input_size)) from None
    finally:
        for name in set(vars(model)) - attributes:  # fx stows literal tensors on the root
            if _FX_CONSTANT.fullmatch(name):
                delattr(model, name)
    return Traced(graph, list(graph.nodes), tracer.module_calls, leaf_attention)


_FX_CONSTANT = re.compile(r"_(tensor_constant|torchbind_obj|tree_spec_constant|opaque_obj)\d*")


def _example_input(model: nn.Module, input_size: tuple[int, int, int]) -> torch.Tensor:
    # The input takes the model's own dtype and device (its values do not matter: only shapes do).
    first = next((p for p in model.parameters() if p.is_floating_point()), None)
    dtype, device = (first.dtype, first.device) if first is not None else (torch.float32, torch.device("cpu"))
    return torch.randn(1, *input_size, generator=torch.Generator().manual_seed(0), dtype=dtype).to(device)


def _failure_message(path: str, module: nn.Module, error: Exception, input_size: tuple[int, int, int]) -> str:
    where = (
        f"module {path!r} ({type(module).__name__})"
        if path
        else f"the model's forward ({type(module).__name__})"
    )
    if isinstance(error, _RunFailure):
        size = "×".join(map(str, input_size))
        return f"the model fails on a {size} input in {where}: {error}"
    if isinstance(error, _BranchOnValues):
        return (
            f"analyze cannot trace {where}: its control flow depends on tensor values ({error}); "
            "analyze follows sizes, not values"
        )
    return f"analyze cannot trace {where}: {_first_line(error)}"


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def describe(value: Any) -> Any:
    """A TensorInfo for a tensor, the same structure for tuples and lists, None otherwise."""
    if isinstance(value, torch.Tensor):
        floating = value.is_floating_point() or value.is_complex()
        return TensorInfo(tuple(value.shape), value.is_contiguous(), floating)
    if isinstance(value, tuple | list):
        return tuple(describe(v) for v in value)
    return None


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
