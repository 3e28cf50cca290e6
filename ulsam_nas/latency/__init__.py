"""Latency beside MACs: a latency model per device (PyTorch eager or ONNX Runtime on this CPU, at
a thread count and batch), measured once per operation a plan can change and stored per device,
and a plan's predicted latency from it in microseconds (``LatencyTable``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ulsam_nas.latency.device import RUNTIMES, Device, this_device
from ulsam_nas.latency.table import LatencyTable, MissingEntries, busy
from ulsam_nas.latency.timing import CAREFUL, QUICK, TimingPlan, time_calls
from ulsam_nas.networks.core import Network
from ulsam_nas.networks.plan import Placement, PlanLike

__all__ = [
    "CAREFUL",
    "QUICK",
    "RUNTIMES",
    "Device",
    "LatencyTable",
    "MissingEntries",
    "TimingPlan",
    "device_table",
    "latency_line",
    "latency_report",
    "module_latencies",
    "open_table",
    "predict_latency",
    "table_folder",
    "this_device",
    "time_calls",
    "use_table",
    "where_text",
]


def table_folder() -> Path:
    """Where tables measured on this machine are kept: ``$ULSAM_NAS_CACHE/latency`` (default
    ``~/.cache/ulsam-nas/latency``)."""
    root = os.environ.get("ULSAM_NAS_CACHE") or Path.home() / ".cache" / "ulsam-nas"
    return Path(root) / "latency"


def device_table(device: Device, folder: Path | None = None) -> tuple[LatencyTable, Path]:
    """The table of ``device`` in ``folder`` (empty if none was measured yet), and its file."""
    path = (folder or table_folder()) / f"{device.runtime}-{device.key()}.json"
    if not path.is_file():
        return LatencyTable(device), path
    table = LatencyTable.load(path)
    if table.device != device:  # a hash collision or a hand-edited file: never use it silently
        raise MissingEntries(f"latency table {str(path)!r} is of {table.device.text()}, not {device.text()}")
    return table, path


def predict_latency(
    network: Network,
    plans: Iterable[PlanLike],
    runtime: str = "torch",
    threads: int = 1,
    batch: int = 1,
    folder: Path | None = None,
) -> tuple[list[float], Device]:
    """Each plan's predicted latency (ms) on this machine, measuring (and storing) the entries
    its table lacks first."""
    plans = list(plans)
    table, _ = use_table(runtime, threads, batch, lambda t: t.measure(network, plans), folder=folder)
    return [table.predict(network, plan) for plan in plans], table.device


def open_table(
    here: Device, table_file: Path | None = None, folder: Path | None = None
) -> tuple[LatencyTable, Path]:
    """This machine's table of ``here`` (under ``folder``, default ``table_folder``), or the
    table in ``table_file`` (a new one of ``here`` when the file does not exist yet)."""
    if table_file is None:
        return device_table(here, folder)
    path = Path(table_file)
    return (LatencyTable.load(path) if path.is_file() else LatencyTable(here)), path


def use_table(
    runtime: str,
    threads: int,
    batch: int,
    measure: Callable[[LatencyTable], int],
    table_file: Path | None = None,
    folder: Path | None = None,
) -> tuple[LatencyTable, dict[str, Any]]:
    """The table to predict from (``open_table``), with what ``measure`` adds to it first where
    it is this machine's (stored when anything was measured; a table of another device only
    predicts), and where it comes from: its device, its file, whether it was measured beside
    other work and how many entries were measured now."""
    here = this_device(runtime, threads, batch)
    table, path = open_table(here, table_file, folder)
    measured = measure(table) if table.device == here else 0
    if measured:
        table.save(path)
    return table, {
        "device": table.device.text(),
        "runtime": table.device.runtime,
        "busy": busy(table),
        "this_machine": table.device == here,
        "table": str(path),
        "entries_measured_now": measured,
    }


def latency_report(
    network: Network,
    plan: PlanLike,
    runtime: str = "torch",
    threads: int = 1,
    batch: int = 1,
    table_file: Path | None = None,
) -> dict[str, Any]:
    """A plan's predicted latency with the plain network's and the device (see ``use_table``)."""
    table, where = use_table(runtime, threads, batch, lambda t: t.measure(network, ["", plan]), table_file)
    plain, predicted = table.predict(network, ""), table.predict(network, plan)
    return {"predicted_ms": predicted, "plain_ms": plain, "change_ms": predicted - plain, **where}


def module_latencies(
    placed: dict[str, tuple[Placement, tuple[int, int, int]]],
    runtime: str = "torch",
    threads: int = 1,
    batch: int = 1,
    table_file: Path | None = None,
) -> tuple[dict[str, float], dict[str, Any]]:
    """What each module (a resolved placement at a shape, by name) adds to a network's latency
    (ms), and where that was measured (see ``use_table``)."""
    table, where = use_table(
        runtime, threads, batch, lambda t: t.measure_modules(placed.values()), table_file
    )
    return {name: table.added(placement, shape) for name, (placement, shape) in placed.items()}, where


def latency_line(report: dict[str, Any]) -> str:
    """The report's latency as one line of text."""
    return (
        f"  latency {report['predicted_ms']:.3f} ms predicted "
        f"(the plain network {report['plain_ms']:.3f} ms, {report['change_ms']:+.3f} ms) "
        f"{where_text(report)}"
    )


def where_text(report: dict[str, Any]) -> str:
    """On which device, from which table (and what was measured now)."""
    other = "" if report["this_machine"] else " (a table of another device: predicted for it, not this one)"
    measured = report["entries_measured_now"]
    return f"on {report['device']}{other}; table {report['table']}{report.get('busy', '')}" + (
        f", {measured} entries measured now" if measured else ""
    )
