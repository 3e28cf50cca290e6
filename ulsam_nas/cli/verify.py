"""``ulsam-nas verify`` (closed forms against the tracing counters) and ``ulsam-nas explain``
(what each counter counts for one module, term by term)."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from ulsam_nas import attention
from ulsam_nas.cli.arguments import (
    add_module_options,
    add_output_args,
    add_shape_args,
    module_options,
    non_negative_int,
    output_folder,
    positive_int,
)
from ulsam_nas.output import emit, to_json, write_atomic
from ulsam_nas.tables import resolve_modules

SUMMARY = "closed forms against fvcore, ptflops and torch's FlopCounterMode"
EXPLAIN_SUMMARY = "what each FLOP counter counts for one module, term by term"
EXAMPLES = """
  ulsam-nas verify                                    every module, 3 random shapes each (~20 s)
  ulsam-nas verify --modules ulsam,se --samples 20 --batch 4
  ulsam-nas verify --backbones --samples 50 --report reports
"""
EXPLAIN_EXAMPLES = """
  ulsam-nas explain ulsam                             at 512×14×14, traced by every counter
  ulsam-nas explain se --channels 96 --height 28 --width 28 --reduction 8
  ulsam-nas explain non_local --no-trace --json       the projections only, no tracing
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--modules", nargs="+", metavar="MODULE", help="keys or comma lists, 'paper' or 'all' (default: all)"
    )
    parser.add_argument(
        "--samples",
        type=non_negative_int,
        default=3,
        help="random shapes/configs per module besides the paper's shape (default 3)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random shapes (default 0)")
    parser.add_argument("--batch", type=positive_int, default=1, help="batch size traced (default 1)")
    parser.add_argument(
        "--backbones",
        action="store_true",
        help="also SAMPLES built-in backbones (MobileNets, ResNet-18): random α, resolution, stem, plan",
    )
    parser.add_argument(
        "--no-known-different",
        action="store_true",
        help="skip ptflops' pytorch backend, thop and ultralytics-thop",
    )
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.add_argument(
        "--report", metavar="DIR", type=output_folder, help="also write DIR/verification.md and .csv"
    )
    add_output_args(parser)


def run(args: argparse.Namespace) -> int:
    from ulsam_nas.verify import attention_cases, network_cases, verify
    from ulsam_nas.verify.cases import AnyCase
    from ulsam_nas.verify.render import mismatch_lines, verify_csv, verify_markdown

    modules = resolve_modules(args.modules) if args.modules else attention.list_attention()
    cases: list[AnyCase] = list(attention_cases(modules, args.samples, args.seed))
    if args.backbones:
        cases += network_cases(args.samples, args.seed)
    result = verify(
        cases, batch=args.batch, known_different=not args.no_known_different, progress=_progress(args)
    )
    markdown = verify_markdown(result, shlex.join(["ulsam-nas", *args.argv]))
    if args.report:
        write_atomic(Path(args.report) / "verification.md", markdown)
        write_atomic(Path(args.report) / "verification.csv", verify_csv(result))
    emit(to_json(result.to_json()) if args.json else markdown, args.output)
    if not result.all_match and not args.json:
        for line in mismatch_lines(result):
            print(f"mismatch: {line}", file=sys.stderr)
    return 0 if result.all_match else 1


def _progress(args: argparse.Namespace) -> Callable[[str], None] | None:
    """A line on stderr as tracing starts and as each counter finishes (tracing takes seconds)."""
    if args.quiet:
        return None
    return lambda line: print(f"{args.command}: {line}", file=sys.stderr, flush=True)


def add_explain_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("module", metavar="MODULE", help=f"one of: {', '.join(attention.list_attention())}")
    add_shape_args(parser)
    add_module_options(parser)
    parser.add_argument("--no-trace", action="store_true", help="only the closed-form projections")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    add_output_args(parser)


def run_explain(args: argparse.Namespace) -> int:
    from ulsam_nas.verify import Case, explain
    from ulsam_nas.verify.render import explain_text

    spec = attention.get_attention(args.module)
    options = module_options(args)
    config = spec.make_config(args.channels, **options)
    given = {f: getattr(config, f) for f in spec.option_names() if f in options}
    attention.attention_cost(args.module, args.channels, args.height, args.width, **given)  # validates
    explanation = explain(
        Case(spec.key, args.channels, args.height, args.width, given),
        trace=not args.no_trace,
        progress=_progress(args),
    )
    emit(to_json(explanation.to_json()) if args.json else explain_text(explanation), args.output)
    return 0
