"""``ulsam-nas replicate``: run a finished study again under another seed base and say whether
its recommendation replicates."""

from __future__ import annotations

import argparse
import sys

from ulsam_nas.cli.arguments import study_overrides_of
from ulsam_nas.output import emit, to_json

SUMMARY = "run a finished study again under another seed base: does its recommendation replicate?"
EXAMPLES = """
  ulsam-nas replicate studies/default.yaml --seed 100
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "study", metavar="STUDY.yaml", help="a finished study's file, e.g. studies/default.yaml"
    )
    parser.add_argument(
        "--seed",
        type=int,
        required=True,
        help="the replica's seed base (initialisations, batch orders, sampler)",
    )
    parser.add_argument("--storage", help="an Optuna storage URL or a journal file path")
    parser.add_argument("--study-name", help="the original study's name in the storage")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, one line per trial")
    parser.add_argument("--json", action="store_true", help="the verdict as one JSON document")


def run(args: argparse.Namespace) -> int:
    from ulsam_nas.cli.progress import log_lines, progress_bars
    from ulsam_nas.search.config import load_study_config
    from ulsam_nas.search.replicate import replicate

    overrides = {
        k: v for k, v in study_overrides_of(args).items() if k != "sampler.seed" and k != "proxy.seed"
    }
    config = load_study_config(args.study, overrides)
    verdict = replicate(
        config,
        args.seed,
        log_lines() if args.quiet else progress_bars(),
        lambda text: print(text, file=sys.stderr),
    )
    emit(to_json(verdict) if args.json else f"Replication: {verdict['sentence']}.\n", None)
    return 0
