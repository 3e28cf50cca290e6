"""Where a latency was measured: the CPU, the runtime and its version, threads and batch.

A latency table belongs to one :class:`Device`; a table is never used for another (the key of
the file it is stored in is the device's)."""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from ulsam_nas.attention._common import check_positive_int
from ulsam_nas.errors import InvalidInput

RUNTIMES = ("torch", "onnxruntime")


@dataclass(frozen=True)
class Device:
    """A CPU running a runtime (PyTorch eager or ONNX Runtime) at a thread count and batch size."""

    cpu: str
    runtime: str
    version: str
    threads: int
    batch: int

    def text(self) -> str:
        threads = f"{self.threads} thread{'s' if self.threads != 1 else ''}"
        runtime = "PyTorch eager" if self.runtime == "torch" else "ONNX Runtime (CPU)"
        return f"{runtime} {self.version}, {threads}, batch {self.batch}, on {self.cpu}"

    def key(self) -> str:
        """A short stable hash of every field: the name of the device's table file."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Device:
        try:
            return cls(
                str(data["cpu"]),
                str(data["runtime"]),
                str(data["version"]),
                int(data["threads"]),  # type: ignore[call-overload]
                int(data["batch"]),  # type: ignore[call-overload]
            )
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidInput(f"latency table device {data!r} is invalid ({error})") from None


def this_device(runtime: str = "torch", threads: int = 1, batch: int = 1) -> Device:
    """This machine running ``runtime`` at ``threads`` and ``batch``."""
    if runtime not in RUNTIMES:
        raise InvalidInput(f"runtime {runtime!r} is unknown; allowed: {', '.join(RUNTIMES)}")
    check_positive_int("threads", threads)
    check_positive_int("batch", batch)
    return Device(cpu_name(), runtime, runtime_version(runtime), threads, batch)


def runtime_version(runtime: str) -> str:
    if runtime == "torch":
        import torch

        return torch.__version__
    import onnxruntime

    return str(onnxruntime.__version__)


@lru_cache(maxsize=1)
def cpu_name() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what the platform reports."""
    info = Path("/proc/cpuinfo")
    if info.is_file():
        for line in info.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name") and ":" in line:
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"
