"""The network a plan describes: a deep copy of the user's model with attention modules
inserted after, or in place of, submodules named by path.

State-dict names: a module inserted after ``layer3.1`` wraps it in :class:`WithAttention`, so
the original weights move from ``layer3.1.<name>`` to ``layer3.1.module.<name>`` and the
attention module's appear as ``layer3.1.attention.<name>``; a module replacing ``layer3.1``
takes its place, its weights at ``layer3.1.<name>``.  Everything else keeps its name.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ulsam_nas.analysis.graph import Position
from ulsam_nas.attention import create_attention
from ulsam_nas.networks.plan import REMOVE, TAKE_OUT, Placement


class WithAttention(nn.Module):
    """``attention(module(x))``: a submodule followed by an inserted attention module."""

    def __init__(self, module: nn.Module, attention: nn.Module) -> None:
        super().__init__()
        self.module = module
        self.attention = attention

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.attention(self.module(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        # A parent's forward may read the wrapped module's attributes (``self.conv.stride``):
        # what the wrapper lacks is looked up on the module it wraps.
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name in ("module", "attention"):
                raise
            return getattr(super().__getattr__("module"), name)

    # Indexing and iterating reach the wrapped module too (a parent may index a Sequential).
    def __getitem__(self, index: Any) -> Any:
        return self.module[index]  # type: ignore[index]

    def __iter__(self) -> Any:
        return iter(self.module)  # type: ignore[call-overload]

    def __len__(self) -> int:
        return len(self.module)  # type: ignore[arg-type]

    def __bool__(self) -> bool:
        return True  # a module is truthy even when what it wraps has no length


def build(model: nn.Module, placements: Sequence[Placement], positions: Sequence[Position]) -> nn.Module:
    """A deep copy of ``model`` with resolved ``placements`` applied (the model is untouched).
    Deeper paths go first, so that wrapping an outer module never renames an inner path."""
    built = copy.deepcopy(model)
    ordered = sorted(placements, key=lambda p: -positions[p.index].path.count("."))
    for p in ordered:
        position = positions[p.index]
        parent_path, _, name = position.path.rpartition(".")
        parent = built.get_submodule(parent_path)
        original = built.get_submodule(position.path)
        if p.module == REMOVE:  # swap@path:none: the gate is removed, its input passes through
            setattr(parent, name, nn.Identity())
            continue
        attention = create_attention(p.module, position.out_shape[0], **p.config)
        attention.train(original.training)
        replacement = attention if p.action in TAKE_OUT else WithAttention(original, attention)
        replacement.training = original.training  # the wrapper only: its children keep their own
        setattr(parent, name, replacement)
    return built
