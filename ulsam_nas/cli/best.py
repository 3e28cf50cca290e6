"""``ulsam-nas best``: the best configurations of a study, as plans you can build."""

from __future__ import annotations

import argparse
from pathlib import Path

from ulsam_nas.cli.arguments import (
    add_latency_arguments,
    add_output_args,
    add_study_source_args,
    check_latency_arguments,
    positive_int,
)
from ulsam_nas.output import emit, to_json

SUMMARY = "the best configurations of a study, as plans you can build"
EXAMPLES = """
  ulsam-nas best studies/default.yaml
  ulsam-nas best studies/default.yaml --top 3 --json
  ulsam-nas best --storage postgresql://user@host/db --study-name default -o best.md
  ulsam-nas best studies/default.yaml --latency onnxruntime   also each candidate's latency here
  ulsam-nas best studies/default.yaml --latency torch,onnxruntime -o best.md
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_study_source_args(parser)
    parser.add_argument("--top", type=positive_int, default=5, help="how many configurations (default 5)")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    applies = "each listed candidate's and the trade-off's, on this machine"
    add_latency_arguments(parser, applies, several=True)
    add_output_args(parser)


def run(args: argparse.Namespace) -> int:
    from ulsam_nas.search.results import best_candidates, best_text, check_best_target
    from ulsam_nas.search.storage import open_study, resolve_study

    check_latency_arguments(args)
    storage, name = resolve_study(args.study, args.storage, args.study_name)
    study = open_study(storage, name)
    result = best_candidates(study, args.top)
    if args.latency is not None:
        from ulsam_nas.search.latency import latency_here

        table = Path(args.latency_table) if args.latency_table else None
        result["latency_here"] = [
            latency_here(study, result, runtime, args.threads, args.batch, table) for runtime in args.latency
        ]
    check_best_target(args.output, result)
    emit(to_json(result) if args.json else best_text(result), args.output)
    return 0
