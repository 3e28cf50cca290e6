"""``ulsam-nas search``: run a study (this process and ``--workers`` − 1 more) to its target, or
``--dry-run`` its size and estimated time."""

from __future__ import annotations

import argparse
import sys

from ulsam_nas.cli.arguments import add_proxy_arguments, positive_float, positive_int, study_overrides_of
from ulsam_nas.output import emit, to_json

SUMMARY = "budget-constrained Optuna search over ULSAM's groups, placement and width"
EXAMPLES = """
  ulsam-nas search studies/default.yaml --dry-run     the space's size, what fits, the time
  ulsam-nas search studies/default.yaml               the main job (~34 min on 2 cores)
  ulsam-nas search studies/default.yaml --data synthetic --trials 4 --no-schedule
  ulsam-nas search studies/default.yaml --workers 2 --budget-mmacs 12
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", metavar="STUDY.yaml", help="a study file, e.g. studies/default.yaml")
    parser.add_argument("--trials", type=positive_int, help="finished trials wanted in the study")
    parser.add_argument("--budget-mmacs", type=positive_float, help="MAC budget in millions")
    parser.add_argument("--budget-mparams", type=positive_float, help="parameter budget in millions")
    parser.add_argument(
        "--budget-latency-ms",
        type=positive_float,
        help="latency budget in ms, predicted from the study's latency table (measured once when the "
        "study is created, on the study file's latency device: runtime, threads, batch) and judged "
        "when a configuration is drawn: an over-latency draw never trains",
    )
    parser.add_argument("--storage", help="an Optuna storage URL or a journal file path")
    parser.add_argument("--study-name", help="the study's name in the storage")
    add_proxy_arguments(parser, "sampler and proxy-training seed", "training images", "proxy-training epochs")
    parser.add_argument(
        "--seeds", type=positive_int, help="paired seeds per candidate at the first rung (default 1)"
    )
    parser.add_argument(
        "--no-schedule",
        action="store_true",
        help="the search stage only: no later rungs and no confirmation (a quick look)",
    )
    parser.add_argument("--resolution", type=positive_int, help="input resolution")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), help="training device")
    parser.add_argument(
        "--workers", type=positive_int, default=1, help="processes on this machine (default 1)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar, one line per trial")
    parser.add_argument(
        "--dry-run", action="store_true", help="space size, feasible fraction, estimated time"
    )
    parser.add_argument("--json", action="store_true", help="with --dry-run: one JSON document")


def run(args: argparse.Namespace) -> int:
    from ulsam_nas.cli.progress import log_lines, progress_bars
    from ulsam_nas.search.config import load_study_config
    from ulsam_nas.search.dryrun import dry_run, dry_run_text
    from ulsam_nas.search.problem import prepare
    from ulsam_nas.search.processes import apply_thread_setting, start_workers
    from ulsam_nas.search.storage import redact
    from ulsam_nas.search.worker import Search

    config = load_study_config(args.study, study_overrides_of(args))
    apply_thread_setting()
    problem = prepare(config)
    if args.dry_run:
        plan = dry_run(problem)
        emit(to_json(plan) if args.json else dry_run_text(plan) + "\n", None)
        return 0
    problem.data  # noqa: B018  (load the data first: a missing data set writes no storage)
    search = Search(problem)
    children = start_workers(args.argv, args.workers)
    search.run(config.trials, log_lines() if args.quiet else progress_bars())
    codes = [child.wait() for child in children]
    finished = search.finished()
    where = redact(config.storage_url)
    print(f"{finished}/{config.trials} finished trials in study {config.name!r} ({where})", file=sys.stderr)
    return 0 if finished >= config.trials and all(c == 0 for c in codes) else 1
