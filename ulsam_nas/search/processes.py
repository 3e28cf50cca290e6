"""Local worker processes for ``--workers N``: N − 1 more copies of the same search command,
each with its share of this machine's cores, on the same study."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

THREADS_VARIABLE = "ULSAM_NAS_THREADS"  # torch threads of a worker process


def apply_thread_setting() -> None:
    """Use the thread count a parent process gave this worker (ULSAM_NAS_THREADS), if any."""
    threads = os.environ.get(THREADS_VARIABLE)
    if threads:
        import torch

        torch.set_num_threads(int(threads))


def without_workers(argv: Sequence[str]) -> list[str]:
    """The command line a worker process gets: the same, minus --workers (it runs alone)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            out.append(arg)
    return out


def start_workers(argv: Sequence[str], workers: int) -> list[subprocess.Popen[bytes]]:
    """Start ``workers`` − 1 quiet copies of the command ``argv`` (the arguments after the
    program name) and give this process its share of the cores too."""
    if workers <= 1:
        return []
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    env = {**os.environ, THREADS_VARIABLE: threads}
    command = [sys.executable, "-m", "ulsam_nas", *without_workers(argv), "--quiet"]
    children = [subprocess.Popen(command, env=env) for _ in range(workers - 1)]
    import torch

    torch.set_num_threads(int(threads))
    return children
