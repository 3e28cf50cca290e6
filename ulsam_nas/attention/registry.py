"""The attention-module registry: one entry binds a module, its config and its closed forms.

Coding style every module follows, because hook-based FLOP counters count by style, not by
math: layers with parameters (conv, linear, BatchNorm) and ReLU/max-pool are ``nn`` modules;
global pools, softmax and sigmoid are functional calls; gating and residuals are the ``*`` and
``+`` operators; matrix products are ``torch.matmul``/``torch.bmm``.  Under that style the
known-different counters' totals are explained exactly by ``ulsam_nas.cost.conventions``.
"""

from __future__ import annotations

import dataclasses
import functools
import random
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from torch import nn

from ulsam_nas.attention._common import check_positive_int
from ulsam_nas.cost.compose import check_convention
from ulsam_nas.cost.cost import Cost, Formula, Terms, compile_cost, formula_of
from ulsam_nas.cost.symbolic import Num, Poly
from ulsam_nas.errors import DefaultOptionInvalid, InvalidInput


class AttentionConfig(Protocol):
    """A frozen dataclass of a module's options."""

    def resolved(self, channels: int) -> AttentionConfig:
        """Fill defaults that depend on the channel count."""
        ...

    def validate(self, channels: int, height: int | None = None, width: int | None = None) -> None:
        """Raise InvalidInput naming the first bad value."""
        ...


@dataclass(frozen=True)
class AttentionSpec:
    """Everything the tool knows about one attention module."""

    key: str
    title: str
    citation: str
    config_cls: type[Any]
    module_cls: Callable[[int, Any], nn.Module]
    exact_cost: Callable[..., Terms]
    paper_cost: Callable[..., Terms]
    # Formula symbol of each numeric option, e.g. {"reduction": "r"}.
    symbols: Mapping[str, str] = field(default_factory=dict)
    uses_subspace: bool = False
    uses_mlp: bool = False
    uses_conv1x1: bool = False
    # The terms the paper's accounting drops or over-counts, in one sentence.
    paper_note: str = ""
    # A random valid config for ``channels`` (for verify's samples and the property tests).
    sample_config: Callable[[random.Random, int], dict[str, Any]] = lambda rng, channels: {}

    def option_names(self) -> list[str]:
        if self.config_cls not in _OPTION_NAMES:
            _OPTION_NAMES[self.config_cls] = tuple(f.name for f in dataclasses.fields(self.config_cls))
        return list(_OPTION_NAMES[self.config_cls])

    def make_config(self, channels: int, **options: Any) -> Any:
        """Build, resolve and validate this module's config for ``channels``."""
        config = self._build(channels, options)
        self.validate(config, options, channels)
        return config

    def _build(self, channels: int, options: Mapping[str, Any]) -> Any:
        names = self.option_names()
        unknown = sorted(set(options) - set(names))
        if unknown:
            valid = ", ".join(names) or "none"
            raise InvalidInput(f"unknown option {unknown[0]!r} for {self.key}; valid options: {valid}")
        hints = _type_hints(self.config_cls)
        for name, value in options.items():
            _check_type(name, value, hints[name])
        return self.config_cls(**options).resolved(channels)

    def validate(
        self,
        config: Any,
        given: Mapping[str, Any],
        channels: int,
        height: int | None = None,
        width: int | None = None,
    ) -> None:
        """``config.validate``; a failure of an option missing from ``given`` (so at its default)
        is raised as DefaultOptionInvalid, saying so."""
        try:
            config.validate(channels, height, width)
        except DefaultOptionInvalid:
            raise
        except InvalidInput as error:
            found = re.match(r"(\w+)=(\S+?)(?=[ ;,]|$)", str(error))
            if found is None or found[1] not in self.option_names() or found[1] in given:
                raise
            text = str(error)
            raise DefaultOptionInvalid(
                f"{text[: found.end()]} (the default){text[found.end() :]}", found[1]
            ) from None

    def resolved_options(self, channels: int, height: int, width: int, **options: Any) -> dict[str, Any]:
        """Every option of this module at a channels×height×width map, defaults filled in, after
        the config and map-size checks (what a plan's placement stores)."""
        config = self._build(channels, options)
        self.validate(config, options, channels, height, width)
        return {name: getattr(config, name) for name in self.option_names()}

    def resolved_cost(
        self, channels: int, height: int, width: int, options: Mapping[str, Any], convention: str = "exact"
    ) -> Cost:
        """``cost`` of options that ``resolved_options`` returned at this map size (a resolved
        plan's placement): every option present and already checked, so nothing is checked again
        (the cost of a plan never seen before is mostly this)."""
        if self.config_cls not in _FIXED_NAMES:
            _FIXED_NAMES[self.config_cls] = tuple(n for n in self.option_names() if n not in self.symbols)
        fixed = tuple([(name, options[name]) for name in _FIXED_NAMES[self.config_cls]])
        numeric = [options[name] for name in self.symbols]
        return _compiled_cost(self.key, convention, fixed)(channels, height, width, *numeric)

    def terms(
        self,
        channels: int,
        height: int,
        width: int,
        config: Any,
        convention: str = "exact",
        symbolic: bool = False,
    ) -> Terms:
        check_convention(convention)
        config.validate(channels, height, width)
        args: dict[str, Any] = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
        m: Num = channels
        h: Num = height
        w: Num = width
        if symbolic:
            m, h, w = Poly.symbol("m", channels), Poly.symbol("h", height), Poly.symbol("w", width)
            for name, symbol in self.symbols.items():
                args[name] = Poly.symbol(symbol, args[name])
        function = self.exact_cost if convention == "exact" else self.paper_cost
        return function(m, h, w, **args)

    def cost(self, channels: int, height: int, width: int, config: Any, convention: str = "exact") -> Cost:
        """``terms(...).evaluate(convention)``, by the closed form compiled once per module,
        convention and non-numeric options (the numeric ones are its arguments)."""
        config.validate(channels, height, width)
        fixed = tuple(
            (f.name, getattr(config, f.name))
            for f in dataclasses.fields(config)
            if f.name not in self.symbols
        )
        numeric = [getattr(config, name) for name in self.symbols]
        return _compiled_cost(self.key, convention, fixed)(channels, height, width, *numeric)


_TYPE_HINTS: dict[type[Any], dict[str, Any]] = {}
_OPTION_NAMES: dict[type[Any], tuple[str, ...]] = {}  # configs never change
_FIXED_NAMES: dict[type[Any], tuple[str, ...]] = {}  # the options compiled into a closed form


def _type_hints(config_cls: type[Any]) -> dict[str, Any]:
    # typing.get_type_hints re-evaluates annotations on every call; configs never change.
    if config_cls not in _TYPE_HINTS:
        _TYPE_HINTS[config_cls] = typing.get_type_hints(config_cls)
    return _TYPE_HINTS[config_cls]


def _check_type(name: str, value: Any, hint: Any) -> None:
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None and type(None) in allowed:
        return
    if bool in allowed:
        if not isinstance(value, bool):
            raise InvalidInput(f"{name}={value!r} is invalid; allowed: true or false")
        return
    if int in allowed:
        check_positive_int(name, value)
        return
    if float in allowed:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput(f"{name}={value!r} is invalid; allowed: a number")
        return  # the module's own validation checks the range
    raise InvalidInput(f"{name}={value!r} has an unsupported type")


@functools.cache
def _compiled_cost(key: str, convention: str, fixed: tuple[tuple[str, Any], ...]) -> Any:
    spec = _REGISTRY[key]
    symbols = {"m": Poly.symbol("m", 2), "h": Poly.symbol("h", 2), "w": Poly.symbol("w", 2)}
    options: dict[str, Any] = dict(fixed)
    for name, letter in spec.symbols.items():
        options[name] = symbols[letter] = Poly.symbol(letter, 2)
    function = spec.exact_cost if convention == "exact" else spec.paper_cost
    terms = function(symbols["m"], symbols["h"], symbols["w"], **options)
    return compile_cost(list(symbols), terms, convention)


_REGISTRY: dict[str, AttentionSpec] = {}


def register_attention(spec: AttentionSpec) -> AttentionSpec:
    if spec.key in _REGISTRY:
        raise RuntimeError(f"duplicate registration of attention module {spec.key!r}")
    _REGISTRY[spec.key] = spec
    return spec


def list_attention() -> list[str]:
    """Registry keys in the order of the ULSAM paper's table."""
    return list(_REGISTRY)


# timm's ``create_attn`` names for the modules registered here under another key.  The module
# built is always this tool's (the official structure); each module's file says how timm's
# variant differs.
ALIASES = {"coord": "ca", "nl": "non_local"}


def canonical_key(name: str) -> str:
    """The registry key of ``name`` (a key or one of timm's aliases)."""
    return ALIASES.get(name, name)


def get_attention(name: str) -> AttentionSpec:
    try:
        return _REGISTRY[canonical_key(name)]
    except KeyError:
        raise InvalidInput(
            f"unknown attention module {name!r}; valid modules: {', '.join(_REGISTRY)} "
            f"(aliases: {', '.join(f'{a}={k}' for a, k in ALIASES.items())})"
        ) from None


def check_shape(channels: int, height: int, width: int) -> None:
    check_positive_int("channels", channels)
    check_positive_int("height", height)
    check_positive_int("width", width)


def create_attention(name: str, channels: int, **config: Any) -> nn.Module:
    """Build a registered attention module; its output shape equals its input shape."""
    spec = get_attention(name)
    check_positive_int("channels", channels)
    return spec.module_cls(channels, spec.make_config(channels, **config))


def attention_cost(
    name: str, channels: int, height: int, width: int, convention: str = "exact", **config: Any
) -> Cost:
    """Closed-form params and MACs of a module on a (channels, height, width) feature map."""
    spec = get_attention(name)
    check_shape(channels, height, width)
    check_convention(convention)
    cfg = spec.make_config(channels, **config)
    return spec.cost(channels, height, width, cfg, convention)


def attention_formula(
    name: str, channels: int, height: int, width: int, convention: str = "exact", **config: Any
) -> Formula:
    """The same closed form as :func:`attention_cost`, as printable formulas."""
    spec = get_attention(name)
    check_shape(channels, height, width)
    cfg = spec.make_config(channels, **config)
    return formula_of(spec.terms(channels, height, width, cfg, convention, symbolic=True), convention)
