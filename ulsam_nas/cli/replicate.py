"""``ulsam-nas replicate``: run a finished study again under another seed base and say whether
its recommendation replicates."""

from __future__ import annotations

import argparse
import sys

from ulsam_nas.cli.arguments import positive_int
from ulsam_nas.errors import InvalidInput
from ulsam_nas.output import emit, to_json

SUMMARY = (
    "does a finished study's recommendation replicate under another seed base (--seed), "
    "or hold when trained longer (--epochs)?"
)
EXAMPLES = """
  ulsam-nas replicate studies/default.yaml --seed 100
  ulsam-nas replicate studies/default.yaml --epochs 5 --images 10000 --seeds 8
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "study", metavar="STUDY.yaml", help="a finished study's file, e.g. studies/default.yaml"
    )
    parser.add_argument(
        "--seed",
        type=int,
        help="the replica's seed base (initialisations, batch orders, sampler); with --epochs, the "
        "fresh seeds' base (default: the study's seed + 2000)",
    )
    parser.add_argument(
        "--epochs",
        type=positive_int,
        help="instead of a replica: train the recommendation and the reference this many epochs",
    )
    parser.add_argument(
        "--images", type=positive_int, help="with --epochs: training images (default: every training image)"
    )
    parser.add_argument(
        "--seeds", type=positive_int, default=8, help="with --epochs: fresh paired seeds (default 8)"
    )
    parser.add_argument("--storage", help="an Optuna storage URL or a journal file path")
    parser.add_argument("--study-name", help="the original study's name in the storage")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, one line per trial")
    parser.add_argument("--json", action="store_true", help="the verdict as one JSON document")


def run(args: argparse.Namespace) -> int:
    from ulsam_nas.cli.progress import log_lines, progress_bars
    from ulsam_nas.search.config import load_study_config, study_overrides
    from ulsam_nas.search.replicate import check_fidelity, replicate
    from ulsam_nas.search.schedule import Rung

    if args.epochs is None and (args.images is not None):
        raise InvalidInput("--images is given without --epochs; add --epochs, e.g. --epochs 5")
    if args.epochs is None and args.seed is None:
        raise InvalidInput(
            "replicate needs --seed (a replica) or --epochs (a longer training); e.g. --seed 100"
        )
    # Only where the study lives: --seed, --epochs, --images and --seeds say what to run, not which study.
    overrides = study_overrides(
        **{n: getattr(args, n) for n in ("storage", "study_name") if getattr(args, n) is not None}
    )
    config = load_study_config(args.study, overrides)
    if args.epochs is not None:
        fidelity = Rung(epochs=args.epochs, images=args.images, seeds=args.seeds)
        verdict = check_fidelity(config, fidelity, args.seed, None if args.quiet else _stage)
        emit(to_json(verdict) if args.json else f"At a longer training: {verdict['sentence']}.\n", None)
        return 0
    verdict = replicate(
        config,
        args.seed,
        log_lines() if args.quiet else progress_bars(),
        lambda text: print(text, file=sys.stderr),
    )
    emit(to_json(verdict) if args.json else f"Replication: {verdict['sentence']}.\n", None)
    return 0


def _stage(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
