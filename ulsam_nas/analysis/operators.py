"""Which Python callables and tensor methods a traced graph node stands for: each maps to the
kind of operation ``rules`` costs (``"add"``, ``"linear"``, ``"moves"`` for data movement).  Data
only; keyed on the callables themselves, so an alias (``F.gelu`` is ``torch._C._nn.gelu``) is the
same key."""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.nn.functional as F

_ELEMENTWISE: dict[str, tuple[Any, ...]] = {
    "add": (operator.add, operator.iadd, torch.add),
    "sub": (operator.sub, operator.isub, torch.sub, torch.subtract),
    "mul": (operator.mul, operator.imul, torch.mul, torch.multiply),
    "div": (operator.truediv, operator.itruediv, torch.div, torch.true_divide),
    "matmul": (operator.matmul, torch.matmul, torch.bmm, torch.mm),
    "relu": (F.relu, torch.relu, F.relu_, torch.relu_),
    "relu6": (F.relu6,),
    "hardtanh": (F.hardtanh,),
    "leaky_relu": (F.leaky_relu, F.leaky_relu_),
    "conv": (F.conv1d, F.conv2d),
    "einsum": (torch.einsum,),
    "sigmoid": (torch.sigmoid, F.sigmoid),
    "silu": (F.silu,),
    "gelu": (F.gelu,),
    "tanh": (torch.tanh, F.tanh),
    "avg_pool2d": (F.avg_pool2d,),
    "interpolate": (F.interpolate,),
    "batch_norm": (F.batch_norm,),
    "layer_norm": (F.layer_norm,),
    "group_norm": (F.group_norm,),
    "linear": (F.linear,),
    "sdpa": (F.scaled_dot_product_attention,),
    "hardswish": (F.hardswish,),
    "hardsigmoid": (F.hardsigmoid,),
    "softmax": (F.softmax, torch.softmax, F.log_softmax, torch.log_softmax),
    "normalize": (F.normalize,),
    "cumsum": (torch.cumsum,),
    "any_reduction": (torch.var, torch.std, torch.norm, torch.logsumexp),
    "unary_math": (
        *(torch.exp, torch.log, torch.sqrt, torch.rsqrt, torch.abs, torch.neg, torch.clamp),
        torch.clip,
        *(
            torch.reciprocal,
            torch.sin,
            torch.cos,
            torch.logical_not,
            operator.neg,
            operator.invert,
            operator.abs,
        ),
    ),
    "mean": (torch.mean,),
    "sum": (torch.sum,),
    "amax": (torch.amax,),
    "max": (torch.max,),
    "pow": (torch.pow, operator.pow),
    "square": (torch.square,),
    "max_pool2d": (F.max_pool2d,),
    "adaptive_avg_pool2d": (F.adaptive_avg_pool2d,),
    "adaptive_max_pool2d": (F.adaptive_max_pool2d,),
    "dropout": (F.dropout, F.dropout1d, F.dropout2d),
    "moves": (
        operator.getitem,
        getattr,
        torch.flatten,
        torch.reshape,
        torch.cat,
        torch.concat,
        torch.stack,
        torch.split,
        torch.chunk,
        torch.transpose,
        torch.permute,
        torch.squeeze,
        torch.unsqueeze,
        torch.narrow,
        torch.movedim,
        torch.t,
        torch.zeros_like,
        torch.ones_like,
        F.pad,
        *(torch.zeros, torch.ones, torch.full, torch.empty, torch.arange, torch.roll, torch.where),
        *(torch.tensor, torch.as_tensor, torch.linspace, torch.eye, torch.full_like, torch.empty_like),
        *(torch.rand, torch.randn, torch.rand_like, torch.randn_like, torch.meshgrid, torch.broadcast_to),
        *(torch.flip, torch.gather, torch.index_select, torch.tril, torch.triu, torch.repeat_interleave),
    ),
}
FUNCTIONS: dict[Any, str] = {f: kind for kind, functions in _ELEMENTWISE.items() for f in functions}

_METHOD_KINDS: dict[str, tuple[str, ...]] = {
    "add": ("add", "add_"),
    "sub": ("sub", "sub_"),
    "mul": ("mul", "mul_"),
    "div": ("div", "div_"),
    "matmul": ("matmul", "bmm", "mm"),
    "relu": ("relu", "relu_"),
    "sigmoid": ("sigmoid", "sigmoid_"),
    "tanh": ("tanh", "tanh_"),
    "softmax": ("softmax", "log_softmax"),
    "cumsum": ("cumsum",),
    "any_reduction": ("var", "std", "norm", "logsumexp"),
    "unary_math": (
        *("exp", "log", "sqrt", "rsqrt", "abs", "neg", "clamp", "clip", "reciprocal", "sin", "cos"),
        *("exp_", "sqrt_", "clamp_", "neg_", "abs_", "logical_not"),
    ),
    "mean": ("mean",),
    "sum": ("sum",),
    "amax": ("amax",),
    "max": ("max",),
    "pow": ("pow",),
    "square": ("square",),
    "moves": (
        *("view", "view_as", "reshape", "reshape_as", "flatten", "unflatten", "permute", "transpose"),
        *("t", "contiguous", "expand", "expand_as", "unsqueeze", "squeeze", "size", "dim", "chunk"),
        *("split", "narrow", "clone", "detach", "to", "type_as", "numel", "movedim", "unbind"),
        *("float", "half", "bfloat16", "double", "type"),  # dtype casts: copies, no arithmetic
        *("repeat", "repeat_interleave", "roll", "masked_fill", "masked_fill_", "fill_", "zero_"),
        *("new_zeros", "new_ones", "new_full", "new_empty", "new_tensor"),
        *("flip", "gather", "index_select", "tril", "triu", "masked_select", "broadcast_to"),
    ),
}
METHODS: dict[str, str] = {m: kind for kind, methods in _METHOD_KINDS.items() for m in methods}
