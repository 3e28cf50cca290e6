"""Command line: ``ulsam-nas COMMAND ...`` (also ``python -m ulsam_nas``).

Each command is a module of this package with ``SUMMARY``, ``add_arguments(parser)`` and
``run(args) -> exit status``; a command parses, calls one library function and prints.  The
command line itself is read only here (``main``) and handed to commands as ``args.argv``.
Invalid input ends with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from ulsam_nas.cli import best, calibrate, cost, replicate, report, search, table, verify
from ulsam_nas.cli.arguments import Parser
from ulsam_nas.errors import DefaultOptionInvalid, InvalidInput

PROG = "ulsam-nas"

Command = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]

COMMANDS: dict[str, Command] = {
    "table": (table.SUMMARY, table.add_arguments, table.run),
    "cost": (cost.SUMMARY, cost.add_arguments, cost.run),
    "verify": (verify.SUMMARY, verify.add_arguments, verify.run),
    "explain": (verify.EXPLAIN_SUMMARY, verify.add_explain_arguments, verify.run_explain),
    "search": (search.SUMMARY, search.add_arguments, search.run),
    "best": (best.SUMMARY, best.add_arguments, best.run),
    "report": (report.SUMMARY, report.add_arguments, report.run),
    "calibrate": (calibrate.SUMMARY, calibrate.add_arguments, calibrate.run),
    "replicate": (replicate.SUMMARY, replicate.add_arguments, replicate.run),
}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=PROG, description=__doc__.splitlines()[0] if __doc__ else None, allow_abbrev=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for name, (summary, add_args, run) in COMMANDS.items():
        command = sub.add_parser(name, help=summary, description=summary, allow_abbrev=False)
        add_args(command)
        command.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; ``argv`` defaults to this process's command line (without the program)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(arguments)
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
