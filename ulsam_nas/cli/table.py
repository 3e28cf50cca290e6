"""``ulsam-nas table``: the ULSAM paper's overhead table for any feature-map shape."""

from __future__ import annotations

import argparse
from pathlib import Path

from ulsam_nas.cli.arguments import (
    add_latency_arguments,
    add_module_options,
    add_output_args,
    add_shape_args,
    check_latency_arguments,
    module_options,
)
from ulsam_nas.cost.cost import CONVENTIONS
from ulsam_nas.output import TABLE_FORMATS, emit, render_frame, to_json
from ulsam_nas.tables import SORT_KEYS, OverheadTable, overhead_table

SUMMARY = "the ULSAM paper's overhead table for any feature-map shape (and the later modules)"
EXAMPLES = """
  ulsam-nas table                                     the paper's six modules at 512×14×14
  ulsam-nas table --channels 96 --height 28 --width 28
  ulsam-nas table --modules all --sort macs           the six and the five later modules
  ulsam-nas table --modules se,eca,ulsam --reduction 8 --groups 8
  ulsam-nas table --convention exact --format latex -o overhead.tex
  ulsam-nas table --modules all --channels 128 --height 8 --width 8 --latency onnxruntime
  ulsam-nas table --modules all --convention exact --train   each module's training step too
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_shape_args(parser)
    add_module_options(parser)
    parser.add_argument(
        "--convention",
        choices=CONVENTIONS,
        default="paper",
        help="paper: the ULSAM paper's counts (default); exact: every param and MAC",
    )
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--format", choices=TABLE_FORMATS, default="markdown", help="output format")
    fmt.add_argument(
        "--json", action="store_const", const="json", dest="format", help="same as --format json"
    )
    parser.add_argument(
        "--modules",
        nargs="+",
        metavar="MODULE",
        help="modules to list: keys or comma lists, 'all' (the paper's six and the later five), "
        "'paper' (the default)",
    )
    parser.add_argument(
        "--sort",
        choices=SORT_KEYS,
        help="order the rows by MACs or params, smallest first (default: registry order)",
    )
    parser.add_argument(
        "--train",
        action="store_true",
        help="two columns: each module's training-step MACs (forward and backward products, exact) "
        "and torch's FlopCounterMode count of that step",
    )
    add_latency_arguments(parser, "a column: what each module adds to a network's latency at this shape")
    add_output_args(parser)


def run(args: argparse.Namespace) -> int:
    check_latency_arguments(args)
    table = overhead_table(
        args.channels,
        args.height,
        args.width,
        convention=args.convention,
        modules=args.modules,
        sort=args.sort,
        **module_options(args),
    )
    if args.train:
        table = table.with_training()
    if args.latency is not None:
        table = with_latency(table, args)
    if args.format == "json":
        text = to_json(table.to_json())
    else:
        title = (
            f"Attention overheads at m={table.channels}, h×w={table.height}×{table.width} "
            f"({table.convention} convention)\n\n"
        )
        body = render_frame(table.to_frame(thousands=args.format != "csv"), args.format, table.notes)
        text = title + body if args.format == "markdown" else body
    emit(text, args.output)
    return 0


def with_latency(table: OverheadTable, args: argparse.Namespace) -> OverheadTable:
    """The table with what each module adds to a network's latency at its shape, measured on
    this machine (or read from --latency-table)."""
    from ulsam_nas.latency import module_latencies, where_text
    from ulsam_nas.networks.plan import Placement

    shape = (table.channels, table.height, table.width)
    placed = {r.module: (Placement("insert", 0, r.module, **r.config), shape) for r in table.rows}
    table_file = Path(args.latency_table) if args.latency_table else None
    found, where = module_latencies(placed, args.latency, args.threads, args.batch, table_file)
    note = (
        "Latency: what the module adds to a network's latency at this shape — the module run alone "
        "(median of interleaved timing rounds), less the overhead of running an empty module alone "
        f"— {where_text(where)}. Measured, so it varies with the machine, its load and the runtime."
    )
    return table.with_latency(found, where, note)
