"""Argument types and argument groups shared by several commands."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from ulsam_nas.attention._common import parse_number
from ulsam_nas.errors import InvalidInput
from ulsam_nas.latency.device import RUNTIMES


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer; allowed: a positive integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not positive; allowed: a positive integer")
    return value


def runtime_list(text: str) -> list[str]:
    """``torch,onnxruntime``: one or more runtimes, each once."""
    names = [name.strip() for name in text.split(",")]
    for name in names:
        if name not in RUNTIMES:
            raise argparse.ArgumentTypeError(f"runtime {name!r} is unknown; allowed: {', '.join(RUNTIMES)}")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"{text!r} names a runtime twice")
    return names


def non_negative_int(text: str) -> int:
    return 0 if text.strip() == "0" else positive_int(text)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; allowed: a positive number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not positive; allowed: a positive number")
    return value


def boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "yes", "1", "on"):
        return True
    if lowered in ("false", "no", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a boolean; allowed: true or false")


def add_shape_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--channels", type=positive_int, default=512, help="channels m (default 512)")
    parser.add_argument("--height", type=positive_int, default=14, help="feature-map height h (default 14)")
    parser.add_argument("--width", type=positive_int, default=14, help="feature-map width w (default 14)")


def fraction(text: str) -> float:
    """A number in (0, 1] written as a decimal or a fraction: 0.0625 or 1/16."""
    try:
        value = parse_number(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; allowed: e.g. 0.0625 or 1/16") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not in (0, 1]; allowed: e.g. 0.0625 or 1/16")
    return value


# flag, type, help: the options of the modules that have them.  An option not given is not
# passed, so every module keeps its own default (SE's r = 16, Coordinate Attention's r = 32).
MODULE_OPTION_FLAGS: tuple[tuple[str, Any, str], ...] = (
    (
        "--reduction",
        positive_int,
        "reduction r: SE, BAM, CBAM (default 16), Coordinate Attention (default 32)",
    ),
    ("--inner-channels", positive_int, "A²-Net inner channels t (default channels // 8)"),
    ("--groups", positive_int, "ULSAM groups g, must divide channels (default 4)"),
    ("--subsample", boolean, "Non-local: 2×2 max-pool before φ and g (default false)"),
    (
        "--kernel-size",
        positive_int,
        "odd kernel k: ECA (default: the paper's adaptive k), Triplet (default 7)",
    ),
    ("--ratio", fraction, "GC planes p = ⌊m · ratio⌋ (default 1/16; e.g. 0.125 or 1/8)"),
    ("--e-lambda", positive_float, "SimAM's λ (default 1e-4)"),
    ("--no-spatial", boolean, "Triplet without its h×w gate (default false)"),
)
MODULE_OPTIONS = tuple(flag[2:].replace("-", "_") for flag, *_ in MODULE_OPTION_FLAGS)


def add_module_options(parser: argparse.ArgumentParser) -> None:
    """Module options; an option not given is not passed at all (each module's default holds)."""
    group = parser.add_argument_group("module options")
    for flag, kind, text in MODULE_OPTION_FLAGS:
        metavar = "BOOL" if kind is boolean else None
        group.add_argument(flag, type=kind, default=None, help=text, metavar=metavar)


def module_options(args: argparse.Namespace) -> dict[str, Any]:
    return {n: getattr(args, n) for n in MODULE_OPTIONS if getattr(args, n) is not None}


def output_file(text: str) -> str:
    """An output file path, checked when the command line is read (before any work)."""
    return str(_checked_output(text, folder=False))


def output_folder(text: str) -> str:
    """An output folder path, checked when the command line is read (before any work)."""
    return str(_checked_output(text, folder=True))


def _checked_output(text: str, folder: bool) -> str:
    from ulsam_nas.output import check_output_path

    try:
        check_output_path(text, folder=folder)
    except InvalidInput as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


OUTPUT_TYPES = (output_file, output_folder)  # every output path of every command has one of these


def add_output_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o", "--output", metavar="FILE", type=output_file, help="write to FILE instead of stdout"
    )


def add_study_source_args(parser: argparse.ArgumentParser) -> None:
    """A study to read: a study file, or a storage and a study name."""
    parser.add_argument(
        "study", metavar="STUDY.yaml", nargs="?", help="a study file (or --storage and --study-name)"
    )
    parser.add_argument("--storage", help="an Optuna storage URL or a journal file path")
    parser.add_argument("--study-name", help="the study's name in the storage")


def add_proxy_arguments(parser: argparse.ArgumentParser, seed: str, images: str, epochs: str) -> None:
    """The proxy-training flags ``search`` and ``calibrate`` share (with their help texts)."""
    parser.add_argument("--seed", type=int, help=seed)
    parser.add_argument("--data", help="synthetic, fashion-mnist, an image folder or a .npz file")
    parser.add_argument("--images", type=positive_int, help=images)
    parser.add_argument("--epochs", type=positive_int, help=epochs)


def study_overrides_of(args: argparse.Namespace) -> dict[str, Any]:
    """The study-file overrides the flags of ``search`` or ``calibrate`` make."""
    from ulsam_nas.search.config import study_overrides

    names: tuple[str, ...] = (
        "trials",
        "budget_mmacs",
        "budget_mparams",
        "budget_latency_ms",
        "storage",
        "study_name",
        "seed",
    )
    names += ("data", "images", "epochs", "seeds", "no_schedule", "resolution", "device")
    return study_overrides(**{n: getattr(args, n) for n in names if getattr(args, n, None) is not None})


def add_latency_arguments(parser: argparse.ArgumentParser, applies: str, several: bool = False) -> None:
    """``--latency`` (one runtime, or with ``several`` a comma-separated list of them), ``--threads``,
    ``--batch`` and ``--latency-table``."""
    latency = parser.add_argument_group(f"predicted latency ({applies})")
    runtime = {"type": runtime_list, "metavar": "RUNTIME[,RUNTIME]"} if several else {"choices": RUNTIMES}
    latency.add_argument(
        "--latency",
        **runtime,
        help="also the latency on this CPU under RUNTIME (torch: PyTorch eager; onnxruntime: ONNX "
        "Runtime), predicted from a table of measured entries kept per device (the first use "
        "measures what is needed: seconds)",
    )
    latency.add_argument("--threads", type=positive_int, default=1, help="runtime threads (default 1)")
    latency.add_argument("--batch", type=positive_int, default=1, help="images per call (default 1)")
    latency.add_argument(
        "--latency-table",
        metavar="FILE",
        help="the table to use and extend (default: this device's table under "
        "$ULSAM_NAS_CACHE/latency, else ~/.cache/ulsam-nas/latency); a table measured on another "
        "device is used for predictions only, and the output names its device",
    )


LATENCY_ONLY = {"threads": 1, "batch": 1, "latency_table": None}


def check_latency_arguments(args: argparse.Namespace) -> None:
    if args.latency is None:
        stray = [k for k, default in LATENCY_ONLY.items() if getattr(args, k) != default]
        if stray:
            raise InvalidInput(f"--{stray[0].replace('_', '-')} applies to --latency")
    elif isinstance(args.latency, list) and len(args.latency) > 1 and args.latency_table is not None:
        raise InvalidInput(
            f"--latency-table {args.latency_table} is one device's table; --latency names "
            f"{len(args.latency)} runtimes ({','.join(args.latency)}): give one"
        )
