"""``ulsam-nas table``: the ULSAM paper's overhead table for any feature-map shape."""

from __future__ import annotations

import argparse

from ulsam_nas.cli.arguments import add_module_options, add_output_args, add_shape_args, module_options
from ulsam_nas.cost.cost import CONVENTIONS
from ulsam_nas.output import TABLE_FORMATS, emit, render_frame, to_json
from ulsam_nas.tables import SORT_KEYS, overhead_table

SUMMARY = "the ULSAM paper's overhead table for any feature-map shape (and the later modules)"
EXAMPLES = """
  ulsam-nas table                                     the paper's six modules at 512×14×14
  ulsam-nas table --channels 96 --height 28 --width 28
  ulsam-nas table --modules all --sort macs           the six and the five later modules
  ulsam-nas table --modules se,eca,ulsam --reduction 8 --groups 8
  ulsam-nas table --convention exact --format latex -o overhead.tex
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
    add_output_args(parser)


def run(args: argparse.Namespace) -> int:
    table = overhead_table(
        args.channels,
        args.height,
        args.width,
        convention=args.convention,
        modules=args.modules,
        sort=args.sort,
        **module_options(args),
    )
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
