"""A user's network named as ``package.module:factory`` or ``path/to/file.py:factory`` (the
``--model`` flag, a search space's ``model:``), loaded by calling the factory."""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from ulsam_nas.errors import InvalidInput


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def load_model(spec: str, kwargs: Mapping[str, Any] | None = None) -> nn.Module:
    """Import ``package.module:factory`` (the current directory first on the path, as ``python
    -m`` would have it) or load ``path/to/file.py:factory``, and call the factory with
    ``kwargs`` (none by default)."""
    module_name, colon, attribute = spec.rpartition(":")
    if not colon or not module_name.strip() or not attribute.strip():
        raise InvalidInput(
            f"model {spec!r} is malformed; expected MODULE:FACTORY or FILE.py:FACTORY, e.g. "
            "examples.mynets:resnet_like or examples/mynets.py:resnet_like"
        )
    module = _import_file(spec, module_name) if module_name.endswith(".py") else _import(spec, module_name)
    factory: Any = module
    for part in attribute.split("."):
        if not hasattr(factory, part):
            raise InvalidInput(f"model {spec!r}: {module_name!r} has no attribute {attribute!r}")
        factory = getattr(factory, part)
    if not callable(factory):
        raise InvalidInput(f"model {spec!r}: {attribute!r} is not callable; allowed: a function or class")
    arguments = dict(kwargs or {})
    called = f"{attribute}({', '.join(f'{k}={v!r}' for k, v in arguments.items())})"
    try:
        model = factory(**arguments)
    except Exception as error:
        raise InvalidInput(f"model {spec!r}: {called} failed: {_first_line(error)}") from None
    if not isinstance(model, nn.Module):
        raise InvalidInput(f"model {spec!r}: {called} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def _import(spec: str, module_name: str) -> Any:
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise InvalidInput(
            f"model {spec!r}: cannot import {module_name!r} ({_first_line(error)}); allowed: a module "
            "importable from the current directory or the Python path, or a FILE.py"
        ) from None
    except Exception as error:  # the user's module failed while importing: say how, in one line
        raise InvalidInput(
            f"model {spec!r}: importing {module_name!r} failed: {_first_line(error)}"
        ) from None


def _import_file(spec: str, file_name: str) -> Any:
    """A user's file, imported once under a name derived from its absolute path (so that a
    process that re-creates the model, such as a counter's, gets the same module); its folder
    goes first on the path, so it can import the files beside it."""
    path = os.path.abspath(file_name)
    if not os.path.isfile(path):
        raise InvalidInput(f"model {spec!r}: {file_name} is not a file")
    name = "ulsam_nas_user_" + re.sub(r"\W", "_", path)
    if name in sys.modules:
        return sys.modules[name]
    folder = os.path.dirname(path)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    found = importlib.util.spec_from_file_location(name, path)
    if found is None or found.loader is None:
        raise InvalidInput(f"model {spec!r}: {file_name} cannot be imported as Python")
    module = importlib.util.module_from_spec(found)
    sys.modules[name] = module
    try:
        found.loader.exec_module(module)
    except Exception as error:
        del sys.modules[name]
        raise InvalidInput(f"model {spec!r}: importing {file_name} failed: {_first_line(error)}") from None
    return module


@dataclass(frozen=True)
class ModelSource:
    """A user's network as ``--model`` names it: a factory and its arguments.  Calling it builds
    the model; it pickles by value, so a counter's own process builds the same network."""

    spec: str
    kwargs: tuple[tuple[str, Any], ...] = ()

    def __call__(self) -> nn.Module:
        return load_model(self.spec, dict(self.kwargs))
