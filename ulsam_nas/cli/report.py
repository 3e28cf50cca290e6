"""``ulsam-nas report``: Pareto plots, tables, the groups ablation and an HTML page from a
study's storage."""

from __future__ import annotations

import argparse

from ulsam_nas.cli.arguments import add_study_source_args, output_folder
from ulsam_nas.output import emit, to_json

SUMMARY = "Pareto plots, tables, the groups ablation and an HTML page from a study's storage"
EXAMPLES = """
  ulsam-nas report studies/default.yaml               writes reports/default/ (open index.html)
  ulsam-nas report studies/default.yaml --out /tmp/my-report
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_study_source_args(parser)
    parser.add_argument(
        "--out",
        metavar="DIR",
        type=output_folder,
        help="the report folder itself (default reports/<study-name>/); replaced atomically",
    )
    parser.add_argument("--json", action="store_true", help="print the written paths as JSON")


def run(args: argparse.Namespace) -> int:
    from ulsam_nas.reporting import write_report

    written = write_report(args.study, storage=args.storage, study_name=args.study_name, out=args.out)
    if args.json:
        emit(to_json({"paths": [str(p) for p in written.paths], "partial": written.partial}), None)
        return 0
    print(f"wrote {len(written.paths)} files to {written.folder}/")
    if written.partial:
        print(f"PARTIAL: the study is not finished ({'; '.join(written.partial)})")
    print(f"open {written.folder / 'index.html'}")
    return 0
