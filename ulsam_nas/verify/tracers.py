"""Adapters that trace a model with one FLOP counter.

``trace_cases`` runs inside a fresh process per counter (see ``runner``), so one counter's
monkey-patches never leak into another's count.  Every trace uses eval mode,
``torch.no_grad()``, an explicit input tensor (ptflops would otherwise build an uninitialized
one) and returns per-sample totals: the batch total divided by the batch size.

``ultralytics_thop`` (the maintained thop, 2.x) installs the import name ``thop`` as the frozen
thop does, so it lives in a folder of its own (``ultralytics_thop_folder``) that only its own
tracing process puts first on ``sys.path``; the process that calls ``verify`` never imports it.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

from ulsam_nas.verify.cases import AnyCase, build_model

TraceFn = Callable[[nn.Module, torch.Tensor], tuple[float, int | None]]


def _torch(model: nn.Module, x: torch.Tensor) -> tuple[float, int | None]:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops(), None


def _fvcore(model: nn.Module, x: torch.Tensor) -> tuple[float, int | None]:
    from fvcore.nn import FlopCountAnalysis, parameter_count

    analysis = FlopCountAnalysis(model, (x,))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    return analysis.total(), int(parameter_count(model)[""])


def _ptflops(backend: str) -> TraceFn:
    def trace(model: nn.Module, x: torch.Tensor) -> tuple[float, int | None]:
        from ptflops import get_model_complexity_info

        macs, params = get_model_complexity_info(
            model,
            tuple(x.shape[1:]),
            input_constructor=lambda _: x,
            as_strings=False,
            print_per_layer_stat=False,
            verbose=False,
            backend=backend,
        )
        if macs is None:
            raise RuntimeError("ptflops returned no count")
        return macs, int(params) if params is not None else None

    return trace


def _thop(model: nn.Module, x: torch.Tensor) -> tuple[float, int | None]:
    import thop

    macs, params = thop.profile(copy.deepcopy(model), inputs=(x,), verbose=False)  # thop mutates the model
    return macs, int(params)


ULTRALYTICS_THOP_ENV = "ULSAM_NAS_ULTRALYTICS_THOP"


def ultralytics_thop_folder() -> Path:
    """Where ultralytics-thop is installed: ``$ULSAM_NAS_ULTRALYTICS_THOP`` if set, else the
    folder ``scripts/_venv.sh`` installs it into, ``counters/ultralytics-thop`` in the venv."""
    configured = os.environ.get(ULTRALYTICS_THOP_ENV)
    return Path(configured) if configured else Path(sys.prefix) / "counters" / "ultralytics-thop"


def _import_ultralytics_thop() -> ModuleType:
    """ultralytics-thop's ``thop``, imported from its folder (in the tracing process only)."""
    folder = ultralytics_thop_folder().resolve()
    if "thop" not in sys.modules:  # else the check below refuses the thop already imported
        sys.path.insert(0, str(folder))
    import thop

    if not Path(str(thop.__file__)).resolve().is_relative_to(folder):
        raise RuntimeError(f"thop was imported from {thop.__file__}, not from {folder}")
    return thop


def _ultralytics_thop(model: nn.Module, x: torch.Tensor) -> tuple[float, int | None]:
    macs, params = _import_ultralytics_thop().profile(model, inputs=(x,), verbose=False)
    return macs, int(params)


TRACERS: dict[str, TraceFn] = {
    "torch": _torch,
    "fvcore": _fvcore,
    "ptflops_aten": _ptflops("aten"),
    "ptflops_pytorch": _ptflops("pytorch"),
    "thop": _thop,
    "ultralytics_thop": _ultralytics_thop,
}

# The installable package of each counter, where the counter's name is not the package's.
_PACKAGES = {"ptflops_aten": "ptflops", "ptflops_pytorch": "ptflops", "ultralytics_thop": "ultralytics-thop"}


def counter_version(counter: str) -> str | None:
    """The installed version of the counter's package, or None where it is not installed (read
    from package metadata: nothing is imported)."""
    from importlib import metadata

    package = _PACKAGES.get(counter, counter)
    if counter == "ultralytics_thop":
        found = metadata.distributions(name=package, path=[str(ultralytics_thop_folder())])
        return next((d.version for d in found), None)
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def counter_absent(counter: str) -> str:
    """One line: the counter's package is not installed, and how to install it."""
    if counter == "ultralytics_thop":
        return (
            f"ultralytics_thop: ultralytics-thop is not installed in {ultralytics_thop_folder()} "
            f"(scripts/_venv.sh puts it there; or set {ULTRALYTICS_THOP_ENV} to a folder holding it); "
            "left out"
        )
    package = _PACKAGES.get(counter, counter)
    return f"{counter}: {package} is not installed (the dev extra, '.[dev]', installs it); left out"


def trace_cases(counter: str, cases: Sequence[AnyCase], batch: int) -> list[dict[str, Any]]:
    """Per-sample totals (and parameter counts where the counter reports them) of each case."""
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    logging.disable(logging.CRITICAL)
    trace = TRACERS[counter]
    generator = torch.Generator().manual_seed(0)
    results: list[dict[str, Any]] = []
    for case in cases:
        model = build_model(case).eval()
        x = torch.randn(batch, *case.input_shape(), generator=generator)
        try:
            with (
                torch.no_grad(),
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
            ):
                total, params = trace(model, x)
        except Exception as error:  # a counter crash is a result to report, not a crash of verify
            results.append({"error": f"{type(error).__name__}: {error}".splitlines()[0]})
            continue
        exact_total = round(total)
        per_sample = exact_total // batch
        results.append(
            {
                "traced": per_sample
                if per_sample * batch == exact_total and exact_total == total
                else total / batch,
                "params": params,
            }
        )
    return results


def fvcore_by_module(case: AnyCase) -> dict[str, int]:
    """fvcore's total per submodule path (eval, no_grad, batch 1), for per-layer breakdowns."""
    from fvcore.nn import FlopCountAnalysis

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    logging.disable(logging.CRITICAL)
    model = build_model(case).eval()
    x = torch.randn(1, *case.input_shape(), generator=torch.Generator().manual_seed(0))
    with (
        torch.no_grad(),
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        analysis = FlopCountAnalysis(model, (x,))
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        analysis.tracer_warnings("none")
        return {name: int(total) for name, total in analysis.by_module().items()}
