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
    "softmax": (F.softmax, torch.softmax),
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
    "softmax": ("softmax",),
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
    ),
}
METHODS: dict[str, str] = {m: kind for kind, methods in _METHOD_KINDS.items() for m in methods}
