"""Command line: ``ulsam-nas COMMAND ...`` (also ``python -m ulsam_nas``).

Each command is a module of this package with ``SUMMARY``, ``EXAMPLES``, ``add_arguments(parser)``
and ``run(args) -> exit status``; a command parses, calls one library function and prints.  The
command line itself is read only here (``main``) and handed to commands as ``args.argv``.
Invalid input ends with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Callable, Sequence

from ulsam_nas.cli import best, calibrate, cost, replicate, report, search, table, verify
from ulsam_nas.cli.arguments import Parser
from ulsam_nas.errors import DefaultOptionInvalid, InvalidInput

PROG = "ulsam-nas"

DESCRIPTION = (
    "Exact params and MACs of attention modules (ULSAM, SE, CBAM, ECA and seven more) and of whole "
    "networks with them placed, checked against FLOP counters; and a search for where ULSAM goes "
    "under a budget."
)

# What a new user should run first: cheap, no data, a second or two each.
START = """start here (each takes a second or two, no data needed):
  ulsam-nas table
      the ULSAM paper's overhead table; --channels/--height/--width for your layer's shape
  ulsam-nas cost ulsam --channels 96 --height 28 --width 28 --groups 4
      one module's params, MACs and formulas
  ulsam-nas cost --backbone mobilenet_v2 --plan "insert@*:ulsam"
      a whole network with ULSAM after every block

then: ulsam-nas search studies/default.yaml --dry-run (the search's size and time);
'ulsam-nas COMMAND --help' explains each command, with examples."""

Command = tuple[str, str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]

COMMANDS: dict[str, Command] = {
    "table": (table.SUMMARY, table.EXAMPLES, table.add_arguments, table.run),
    "cost": (cost.SUMMARY, cost.EXAMPLES, cost.add_arguments, cost.run),
    "verify": (verify.SUMMARY, verify.EXAMPLES, verify.add_arguments, verify.run),
    "explain": (
        verify.EXPLAIN_SUMMARY,
        verify.EXPLAIN_EXAMPLES,
        verify.add_explain_arguments,
        verify.run_explain,
    ),
    "search": (search.SUMMARY, search.EXAMPLES, search.add_arguments, search.run),
    "best": (best.SUMMARY, best.EXAMPLES, best.add_arguments, best.run),
    "report": (report.SUMMARY, report.EXAMPLES, report.add_arguments, report.run),
    "calibrate": (calibrate.SUMMARY, calibrate.EXAMPLES, calibrate.add_arguments, calibrate.run),
    "replicate": (replicate.SUMMARY, replicate.EXAMPLES, replicate.add_arguments, replicate.run),
}


def _version() -> str:
    from ulsam_nas import __version__

    return f"{PROG} {__version__}"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description=textwrap.fill(DESCRIPTION, 90),
        epilog=START,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for name, (summary, examples, add_args, run) in COMMANDS.items():
        command = sub.add_parser(
            name,
            help=summary,
            description=textwrap.fill(summary[0].upper() + summary[1:] + ".", 90),
            epilog="examples:\n" + examples.strip("\n"),
            formatter_class=argparse.RawDescriptionHelpFormatter,
            allow_abbrev=False,
        )
        add_args(command)
        command.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; ``argv`` defaults to this process's command line (without the program)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not arguments:  # a first contact: how to start, not an error
        print(parser.format_usage() + "\n" + START)
        return 0
    args = parser.parse_args(arguments)
    args.argv = arguments
    try:
        return int(args.run(args))
    except InvalidInput as error:
        hint = ""
        if isinstance(error, DefaultOptionInvalid):  # a module option the user did not give
            hint = f"; pass --{error.option.replace('_', '-')}"
        print(f"{PROG} {args.command}: error: {error}{hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


__all__ = ["COMMANDS", "PROG", "build_parser", "main"]
