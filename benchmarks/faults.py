"""Do studies survive many workers, dead workers and Ctrl-C?  Real worker processes
(``ulsam-nas search``, one thread each, generated data, a few seconds of training per trial) on
the default journal file and, with --pg-url (or ULSAM_NAS_TEST_PG_URL), on PostgreSQL with
heartbeats every 1 s and a 3 s grace period:

* 3 workers started together on a new study of M trials;
* 3 workers, the one training a search trial (or, with a fidelity schedule, a later stage's
  evaluation) killed with SIGKILL (on PostgreSQL each worker records its own host name, so only
  the heartbeat can tell one died; on the journal the live workers see its process is gone);
* one worker interrupted with SIGINT (Ctrl-C) mid-training, then the same command again.

Per scenario: trials requested / finished / configurations trained twice / lost, and the time
from the kill to the dead worker's trial failed and its configuration queued again.

    python benchmarks/faults.py [--trials 6] [--pg-url postgresql+psycopg2://...]

Writes its section of reports/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from _report import write_section

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.fault_scenarios import Outcome, run_interrupt, run_kill, run_workers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--pg-url", default=os.environ.get("ULSAM_NAS_TEST_PG_URL"))
    args = parser.parse_args()
    outcomes: list[Outcome] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        journal = str(base / "faults.journal")
        outcomes.append(run_workers(base / "a", journal, trials=args.trials))
        outcomes.append(run_kill(base / "b", journal, trials=args.trials))
        outcomes.append(run_kill(base / "g", journal, trials=args.trials, stage="later"))
        outcomes.append(run_interrupt(base / "c", journal, trials=args.trials))
        if args.pg_url:
            outcomes.append(run_workers(base / "d", args.pg_url, trials=args.trials, kind="postgresql"))
            for stage, folder in (("search", "e"), ("later", "h")):
                outcomes.append(
                    run_kill(base / folder, args.pg_url, args.trials, "postgresql", remote=True, stage=stage)
                )
            outcomes.append(run_interrupt(base / "f", args.pg_url, trials=args.trials, kind="postgresql"))
    rows = [
        "| scenario | storage | requested | finished | trained twice | lost | failed (surplus) | "
        "recovery | exit codes | wall |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        recovery = "-" if o.recovery_seconds is None else f"{o.recovery_seconds:.1f} s"
        rows.append(
            f"| {o.scenario} | {o.storage} | {o.requested} | {o.finished} | {o.trained_twice} | {o.lost} | "
            f"{o.failed} ({o.surplus}) | {recovery} | {' '.join(map(str, o.exit_codes))} | "
            f"{o.seconds:.0f} s |"
        )
    body = "\n".join(
        [
            "## Faults: many workers, dead workers, Ctrl-C (`python benchmarks/faults.py`)",
            "",
            f"One run on this {os.cpu_count()}-core machine, {time.perf_counter() - start:.0f} s in all; "
            "each worker one thread, generated data, 2–4 epochs on 256 images per trial. "
            "Exit code -9 is the killed worker, 130 the interrupted one. Recovery: from the kill to "
            "its trial failed and its configuration queued again (journal: by a live worker seeing "
            "the process gone, after its own trial; PostgreSQL: by heartbeat, 1 s interval, 3 s "
            "grace)." + ("" if args.pg_url else " PostgreSQL: not measured (no --pg-url)."),
            "",
            *rows,
        ]
    )
    print(body)
    write_section("faults", body)


if __name__ == "__main__":
    main()
