"""Latency beside MACs: a latency model per device (PyTorch eager or ONNX Runtime on this CPU, at
a thread count and batch), measured once per operation a plan can change and stored per device,
and a plan's predicted latency from it in microseconds (``LatencyTable``)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ulsam_nas.latency.device import RUNTIMES, Device, this_device
from ulsam_nas.latency.table import LatencyTable, MissingEntries
from ulsam_nas.latency.timing import CAREFUL, QUICK, TimingPlan, time_calls
from ulsam_nas.networks.core import Network
from ulsam_nas.networks.plan import PlanLike

__all__ = [
    "CAREFUL",
    "QUICK",
    "RUNTIMES",
    "Device",
    "LatencyTable",
    "MissingEntries",
    "TimingPlan",
    "device_table",
    "predict_latency",
    "table_folder",
    "this_device",
    "time_calls",
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
    table, path = device_table(this_device(runtime, threads, batch), folder)
    if table.measure(network, plans):
        table.save(path)
    return [table.predict(network, plan) for plan in plans], table.device
