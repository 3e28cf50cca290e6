"""``ulsam-nas calibrate``: how well the proxy ranks architectures against a higher fidelity."""

from __future__ import annotations

import argparse
import sys

from ulsam_nas.cli.arguments import add_proxy_arguments, output_folder, positive_int, study_overrides_of
from ulsam_nas.errors import InvalidInput
from ulsam_nas.output import check_output_path, emit, to_json

SUMMARY = "how well the proxy ranks architectures against a higher fidelity (Kendall τ, Spearman ρ)"
EXAMPLES = """
  ulsam-nas calibrate studies/default.yaml --architectures 16 --seeds 2
  ulsam-nas calibrate studies/default.yaml --architectures 16 --proxy-seeds 3 --seeds 2 \
      --high-epochs 5 --high-images 10000
  ulsam-nas calibrate studies/default.yaml --data synthetic --architectures 4 --out /tmp/cal
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", metavar="STUDY.yaml", help="a study file, e.g. studies/default.yaml")
    parser.add_argument(
        "--architectures", type=positive_int, default=12, help="architectures to train (default 12)"
    )
    parser.add_argument(
        "--seeds", type=positive_int, default=2, help="paired seeds at the higher fidelity (default 2)"
    )
    parser.add_argument(
        "--proxy-seeds", type=positive_int, help="paired seeds at the proxy (default: as many as --seeds)"
    )
    parser.add_argument(
        "--high-epochs",
        type=positive_int,
        help="the higher fidelity's epochs (default: the schedule's last rung, else twice the proxy's)",
    )
    parser.add_argument(
        "--high-images",
        type=positive_int,
        help="with --high-epochs: its training images (default: every training image)",
    )
    parser.add_argument("--storage", help="an Optuna storage URL or a journal file path")
    add_proxy_arguments(
        parser, "sampling and training seed", "proxy training images", "proxy training epochs"
    )
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), help="training device")
    parser.add_argument(
        "--out",
        metavar="DIR",
        type=output_folder,
        help="where to write calibration.md/.csv/.png (default: reports/<study name>/)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ulsam_nas.search.calibrate import calibration_settings, plan_calibration, run_calibration
    from ulsam_nas.search.calibration_report import (
        calibration_text,
        check_calibration_target,
        write_calibration,
    )
    from ulsam_nas.search.config import load_study_config
    from ulsam_nas.search.schedule import Rung

    config = load_study_config(args.study, study_overrides_of(args))
    if args.high_images is not None and args.high_epochs is None:
        raise InvalidInput("--high-images is given without --high-epochs; add --high-epochs, e.g. 5")
    high = None if args.high_epochs is None else Rung(epochs=args.high_epochs, images=args.high_images)
    calibration = plan_calibration(config, args.architectures, args.seeds, args.proxy_seeds, high)
    out = args.out or str(
        check_output_path(f"reports/{config.name}", "--out (default reports/<study name>)", folder=True)
    )
    check_calibration_target(out, calibration_settings(calibration))  # before training anything
    progress = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=2 * len(calibration.architectures), desc="calibrate", unit="eval", file=sys.stderr)

        def progress(done: int, total: int) -> None:
            bar.n = done
            bar.refresh()

    result = run_calibration(calibration, progress)
    result["written"] = write_calibration(result, out)
    emit(to_json(result) if args.json else calibration_text(result), None)
    return 0
