"""The cost record every closed form produces, and the conventions it is stated in.

Convention ``exact`` (the default): ``params`` counts every parameter (conv/linear weights,
biases, BatchNorm γ and β; not running statistics), equal to ``sum(p.numel())`` of the module.
``macs`` counts one multiply-accumulate per product in conv, linear and matmul layers, and no
bias additions.  Everything else a forward pass does is listed in ``ops`` as element counts per
operation (see :data:`OP_UNITS`), so that the conventions of the various FLOP counters can be
computed from one record.

A training step (``Cost.train_macs``): the forward MACs plus
the MACs of the backward pass's products, listed in ``train_by`` (see :data:`TRAIN_UNITS`): each
conv, linear and matmul computes its input's gradient (unless that input needs none: a network's
image, or a value computed only from frozen parameters) and its weight's gradient (unless the
weight is frozen), each as many MACs as its forward product.  Bias gradients (sums), BatchNorm,
activations, the loss and the optimizer's update are element-wise work, listed nowhere, as the
forward convention leaves them out of ``macs``.

Convention ``paper``: the ULSAM paper's "#Params" and "#FLOPs" columns.  Each module states in
its file which terms the paper drops or over-counts.  The paper says "FLOPs" for MACs; this
tool calls every such count ``macs`` and labels the unit "MAC".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ulsam_nas.cost.symbolic import Num, Poly, as_int, compile_source, poly_source

CONVENTIONS = ("exact", "paper")

# "attention": the two products inside F.scaled_dot_product_attention (Q·Kᵀ and softmax·V),
# apart from "matmul" because the counters see it differently (on the CPU torch's counter, fvcore
# and ptflops count it as 0: its fused CPU kernel has no formula; measured with torch 2.13).
# "attention_math": the same products where torch runs its math fallback instead (broadcast
# heads, 3-D inputs, ...): as two bmm, which torch's counter and ptflops count, fvcore not.
MAC_KINDS = ("conv", "linear", "matmul", "attention", "attention_math")

# The backward pass's products, in MACs (``Terms`` kind "train", ``Cost.train_by``).  Each equals
# the forward product it differentiates: for y = W·x, ∂x = Wᵀ·∂y and ∂W = ∂y·xᵀ take as many
# MACs as y.  "matmul_grad" holds both operands' gradients of a product of two activations;
# "attention_grad"/"attention_math_grad" the four products of scaled-dot-product attention's
# backward (∂V = Pᵀ·∂O, ∂P = ∂O·Vᵀ, ∂Q = ∂S·K, ∂K = ∂Sᵀ·Q: twice the forward's two).
TRAIN_UNITS: dict[str, str] = {
    "conv_grad_input": "MACs of convolutions' input gradients",
    "conv_grad_weight": "MACs of convolutions' weight gradients",
    "linear_grad_input": "MACs of linear layers' input gradients",
    "linear_grad_weight": "MACs of linear layers' weight gradients",
    "matmul_grad": "MACs of the operands' gradients of products of two activations",
    "attention_grad": "MACs of fused scaled-dot-product attention's backward",
    "attention_math_grad": "MACs of scaled-dot-product attention's backward on torch's math path",
}
# Not MACs anyone computes: what torch's FlopCounterMode adds to a grouped convolution's weight
# gradient, which it counts as if the convolution were dense (groups × the true MACs; measured
# with torch 2.13: ``conv_backward_flop`` drops the group division).  Kept in ``train_by`` so the
# counter's training count is a projection like any other; ``train_macs`` leaves it out.
GROUPED_WEIGHT_EXTRA = "grouped_weight_grad_extra"

# What one unit of each element-wise operation counts.
OP_UNITS: dict[str, str] = {
    "bias_add": "output elements of a conv/linear that has a bias",
    "batch_norm": "elements normalized by BatchNorm (eval: one multiply and one add each)",
    "global_avg_pool": "input elements summed by a global (adaptive) average pool",
    "global_max_pool": "input elements compared by a global max pool",
    "axis_avg_pool": "input elements averaged by an adaptive average pool to one row or column",
    "spatial_mean": "input elements averaged by a mean over h×w (torch.mean, not a pooling op)",
    "spatial_sum": "input elements summed by a sum over h×w",
    "max_pool": "input elements of a k×k max pool",
    "channel_pool": "input elements reduced by a max or mean over channels",
    "reduce": "input elements reduced by a sum, mean or max over other axes (tokens, one side)",
    "adaptive_avg_pool": "input elements of an adaptive average pool to another size (not 1×1, row, column)",
    "relu": "elements through ReLU",
    "relu6": "elements through ReLU6",
    "sigmoid": "elements through a sigmoid",
    "hardswish": "elements through a hard swish (MobileNetV3)",
    "hardsigmoid": "elements through a hard sigmoid (MobileNetV3's SE gate)",
    "softmax": "elements through a softmax",
    "layer_norm": "elements normalized by an affine LayerNorm",
    "group_norm": "elements normalized by an affine GroupNorm",
    "plain_layer_norm": "elements normalized by a LayerNorm without affine parameters",
    "plain_group_norm": "elements normalized by a GroupNorm without affine parameters",
    "normalize": "input elements of an L2 normalization (F.normalize)",
    "cumsum": "input elements of a cumulative sum",
    "unary_math": "elements through other element-wise math (exp, log, sqrt, abs, clamp, sin, …)",
    "silu": "elements through SiLU (swish)",
    "gelu": "elements through GELU (exact or tanh)",
    "tanh": "elements through tanh",
    "leaky_relu": "elements through LeakyReLU",
    "avg_pool": "output elements of a k×k average pool (each the mean of its window)",
    "upsample_nearest": "output elements of a nearest-neighbour resize",
    "upsample_bilinear": "output elements of a bilinear resize",
    "mul": "elements multiplied (gating, scaling)",
    "add": "elements added (residual, branch sums)",
    "sub": "elements subtracted",
    "div": "elements divided",
    "square": "elements squared",
}


class Terms:
    """Cost terms while a closed form is being assembled; values are ints or formulas.

    One flat dict keyed by (kind, name) with kind "params", "macs" or "ops": the cost model
    adds thousands of these per second, so ``+`` copies one small dict and nothing else.
    """

    __slots__ = ("values",)

    def __init__(
        self,
        params: Mapping[str, Num] | None = None,
        macs: Mapping[str, Num] | None = None,
        ops: Mapping[str, Num] | None = None,
        values: dict[tuple[str, str], Num] | None = None,
        train: Mapping[str, Num] | None = None,
    ) -> None:
        self.values: dict[tuple[str, str], Num] = values if values is not None else {}
        for kind, part in (("params", params), ("macs", macs), ("ops", ops), ("train", train)):
            if part:
                for name, value in part.items():
                    self.values[(kind, name)] = value

    @classmethod
    def of(cls, values: dict[tuple[str, str], Num]) -> Terms:
        """Wrap a (kind, name) → value dict without copying (the hot path's constructor)."""
        terms = object.__new__(cls)
        terms.values = values
        return terms

    @staticmethod
    def total(parts: Iterable[Terms]) -> Terms:
        """The sum of many parts in one pass (cheaper than chaining ``+``)."""
        out: dict[tuple[str, str], Num] = {}
        for part in parts:
            for key, value in part.values.items():
                out[key] = out[key] + value if key in out else value
        return Terms.of(out)

    def __add__(self, other: Terms) -> Terms:
        out = self.values.copy()
        for key, value in other.values.items():
            out[key] = out[key] + value if key in out else value
        return Terms.of(out)

    def _part(self, kind: str) -> dict[str, Num]:
        return {name: value for (k, name), value in self.values.items() if k == kind}

    @property
    def params(self) -> dict[str, Num]:
        return self._part("params")

    @property
    def macs(self) -> dict[str, Num]:
        return self._part("macs")

    @property
    def ops(self) -> dict[str, Num]:
        return self._part("ops")

    @property
    def train(self) -> dict[str, Num]:
        return self._part("train")

    def times(self, k: Num) -> Terms:
        """The same terms repeated k times (e.g. a shared MLP applied twice)."""
        return Terms.of({key: value * k for key, value in self.values.items()})

    def without_ops(self) -> Terms:
        """Only the parameters and MACs (what the paper's accounting keeps)."""
        return Terms(values={key: v for key, v in self.values.items() if key[0] != "ops"})

    def without_params(self) -> Terms:
        """The compute of a layer whose weights are shared with one already counted."""
        return Terms(values={key: v for key, v in self.values.items() if key[0] != "params"})

    @property
    def total_params(self) -> Num:
        return _sum(self.params.values())

    @property
    def total_macs(self) -> Num:
        return _sum(self.macs.values())

    def evaluate(self, convention: str) -> Cost:
        parts: dict[str, dict[str, int]] = {"params": {}, "macs": {}, "ops": {}, "train": {}}
        for (kind, name), value in self.values.items():
            parts[kind][name] = value if type(value) is int else as_int(value)
        return Cost(
            params=sum(parts["params"].values()),
            macs=sum(parts["macs"].values()),
            params_by=parts["params"],
            macs_by=parts["macs"],
            ops=parts["ops"],
            convention=convention,
            train_by={k: v for k, v in parts["train"].items() if v} if convention == "exact" else None,
        )


def _sum(values: Any) -> Num:
    total: Num = 0
    for v in values:
        total = total + v
    return total


UNCOSTED = "uncosted_ops"  # Cost.ops key: operators without a closed form (a count, not elements)


@dataclass(frozen=True)
class Cost:
    """Exact integer cost of a module or network under one convention (unit: MAC).  A traced
    network's operations without a closed form are counted in ``ops[UNCOSTED]`` (a number of
    operators, not elements): such a cost is not ``complete``."""

    params: int
    macs: int
    params_by: Mapping[str, int]
    macs_by: Mapping[str, int]
    ops: Mapping[str, int]
    convention: str = "exact"
    unit: str = "MAC"
    # The backward's products (TRAIN_UNITS); None where they have no closed form (the paper's
    # convention; a traced network with an operator whose backward is unknown): never zero.
    train_by: Mapping[str, int] | None = None

    @property
    def train_macs(self) -> int | None:
        """The MACs of one training step: the forward's and the backward's products (None where
        the backward has no closed form here)."""
        if self.train_by is None:
            return None
        return self.macs + sum(v for k, v in self.train_by.items() if k != GROUPED_WEIGHT_EXTRA)

    def reading_the_image(self) -> Cost:
        """This cost where its products read the network's image, which needs no gradient: a
        stem, whose one convolution reads it (no input-gradient products)."""
        if self.train_by is None:
            return self
        kept = {k: v for k, v in self.train_by.items() if k not in ("conv_grad_input", "linear_grad_input")}
        return replace(self, train_by=kept)

    def __add__(self, other: Cost) -> Cost:
        if self.convention != other.convention:
            raise ValueError(f"cannot add a {self.convention!r} cost to a {other.convention!r} cost")
        return Cost(
            params=self.params + other.params,
            macs=self.macs + other.macs,
            params_by=_merge_int(self.params_by, other.params_by),
            macs_by=_merge_int(self.macs_by, other.macs_by),
            ops=_merge_int(self.ops, other.ops),
            convention=self.convention,
            train_by=_merge_train(self.train_by, other.train_by),
        )

    def __sub__(self, other: Cost) -> Cost:
        """This cost without ``other`` (e.g. a network without a layer that was replaced)."""
        if self.convention != other.convention:
            raise ValueError(f"cannot subtract a {other.convention!r} cost from a {self.convention!r} cost")
        return Cost(
            params=self.params - other.params,
            macs=self.macs - other.macs,
            params_by=_merge_int(self.params_by, other.params_by, -1),
            macs_by=_merge_int(self.macs_by, other.macs_by, -1),
            ops=_merge_int(self.ops, other.ops, -1),
            convention=self.convention,
            train_by=_merge_train(self.train_by, other.train_by, -1),
        )

    @property
    def complete(self) -> bool:
        """Whether every operation is in the totals (no operator without a closed form)."""
        return not self.ops.get(UNCOSTED, 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "convention": self.convention,
            "unit": self.unit,
            "complete": self.complete,
            "params": self.params,
            "macs": self.macs,
            "params_by": dict(self.params_by),
            "macs_by": dict(self.macs_by),
            "ops": dict(self.ops),
            "train_macs": self.train_macs,
            "train_by": None if self.train_by is None else dict(self.train_by),
        }


def _merge_train(
    a: Mapping[str, int] | None, b: Mapping[str, int] | None, sign: int = 1
) -> dict[str, int] | None:
    """Backward products of a sum: unknown if either part's are."""
    return None if a is None or b is None else _merge_int(a, b, sign)


def _merge_int(a: Mapping[str, int], b: Mapping[str, int], sign: int = 1) -> dict[str, int]:
    out = dict(a)
    for key, value in b.items():
        out[key] = out.get(key, 0) + sign * value
    return out


@dataclass(frozen=True)
class Formula:
    """Printable closed forms of a cost, produced by the same function as its numbers."""

    params: Poly
    macs: Poly
    train: Poly | None = None  # a training step's MACs (exact convention only)

    def params_text(self, ideal: bool = False) -> str:
        return self.params.text(ideal=ideal)

    def macs_text(self, ideal: bool = False) -> str:
        return self.macs.text(ideal=ideal)

    def train_text(self, ideal: bool = False) -> str | None:
        return None if self.train is None else self.train.text(ideal=ideal)

    def where_items(self) -> list[str]:
        """Definitions of the derived widths the exact texts use, e.g. 'c = max(1, ⌊m/r⌋)'."""
        shown = self.params.idealized(only_exact=True).used_atoms()
        shown += self.macs.idealized(only_exact=True).used_atoms()
        atoms = {a.name: a for a in shown if a.definition}
        return [f"{a.name} = {a.definition}" for a in atoms.values()]

    def where(self) -> str:
        return ", ".join(self.where_items())


def compile_cost(arguments: list[str], terms: Terms, convention: str) -> Callable[..., Cost]:
    """Compile symbolic terms (polynomials in ``arguments``) into a function returning the
    :class:`Cost` that ``terms.evaluate`` would give for those argument values."""

    def source(value: Num) -> str:
        return poly_source(value if isinstance(value, Poly) else Poly.constant(value), arguments)

    def mapping(kind: str) -> str:
        return "{" + ", ".join(f"{name!r}: {source(v)}" for name, v in getattr(terms, kind).items()) + "}"

    expression = (
        f"Cost({source(terms.total_params)}, {source(terms.total_macs)}, {mapping('params')}, "
        f"{mapping('macs')}, {mapping('ops')}, {convention!r}, 'MAC', "
        f"{_nonzero(mapping('train')) if convention == 'exact' else None})"
    )
    atoms: dict[str, Any] = {}
    for value in terms.values.values():
        if isinstance(value, Poly):
            atoms.update(value.atoms)
    derived_atoms = [a for a in atoms.values() if a.function is not None]
    compiled: Callable[..., Cost] = compile_source(arguments, expression, {"Cost": Cost}, derived_atoms)
    return compiled


def _nonzero(mapping: str) -> str:
    """A dict expression without its zero values (a grouped convolution's extra term is 0 where
    the groups are 1, which the numbers, unlike the symbols, know)."""
    return f"{{k: v for k, v in {mapping}.items() if v}}"


def formula_of(terms: Terms, convention: str = "exact") -> Formula:
    def poly(value: Num) -> Poly:
        return value if isinstance(value, Poly) else Poly.constant(value)

    backward = [v for name, v in terms.train.items() if name != GROUPED_WEIGHT_EXTRA]
    train = poly(terms.total_macs + _sum(backward)) if convention == "exact" else None
    return Formula(poly(terms.total_params), poly(terms.total_macs), train)
