"""Command line: ``ulsam-nas COMMAND ...`` (also ``python -m ulsam_nas``).

Each command is a pair (add its arguments, run it); ``COMMANDS`` lists them.  The work itself is
done by library functions that return the data a command prints, so scripts can call them.
Invalid input ends with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from ulsam_nas import attention
from ulsam_nas.backbones.network import BACKBONES, STEMS
from ulsam_nas.cost.cost import CONVENTIONS
from ulsam_nas.errors import InvalidInput
from ulsam_nas.output import TABLE_FORMATS, emit, render_frame, to_json
from ulsam_nas.search.data import SYNTHETIC_TRAIN, SYNTHETIC_VAL
from ulsam_nas.tables import overhead_table

PROG = "ulsam-nas"


class _Parser(argparse.ArgumentParser):
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


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "yes", "1", "on"):
        return True
    if lowered in ("false", "no", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a boolean; allowed: true or false")


def _add_shape_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--channels", type=positive_int, default=512, help="channels m (default 512)")
    parser.add_argument("--height", type=positive_int, default=14, help="feature-map height h (default 14)")
    parser.add_argument("--width", type=positive_int, default=14, help="feature-map width w (default 14)")


def _add_module_options(parser: argparse.ArgumentParser, defaults: bool) -> None:
    """Module options; with ``defaults=False`` an option not given is not passed at all."""
    parser.add_argument(
        "--reduction",
        type=positive_int,
        default=16 if defaults else None,
        help="SE/BAM/CBAM reduction r (default 16)",
    )
    parser.add_argument(
        "--inner-channels",
        type=positive_int,
        default=None,
        help="A²-Net inner channels t (default channels // 8)",
    )
    parser.add_argument(
        "--groups",
        type=positive_int,
        default=4 if defaults else None,
        help="ULSAM groups g, must divide channels (default 4)",
    )
    parser.add_argument(
        "--subsample",
        type=_bool,
        default=False if defaults else None,
        metavar="BOOL",
        help="Non-local: 2×2 max-pool before φ and g (default false)",
    )


def _module_options(args: argparse.Namespace) -> dict[str, Any]:
    names = ("reduction", "inner_channels", "groups", "subsample")
    return {n: getattr(args, n) for n in names if getattr(args, n) is not None}


def _add_output_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")


# -- table -----------------------------------------------------------------------------------
def _table_args(parser: argparse.ArgumentParser) -> None:
    _add_shape_args(parser)
    _add_module_options(parser, defaults=True)
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
    parser.add_argument("--modules", nargs="+", metavar="MODULE", help="a subset of modules")
    _add_output_args(parser)


def _table_run(args: argparse.Namespace) -> int:
    table = overhead_table(
        args.channels,
        args.height,
        args.width,
        convention=args.convention,
        modules=args.modules,
        **_module_options(args),
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


# -- cost ------------------------------------------------------------------------------------
def module_cost_report(
    module: str, channels: int, height: int, width: int, convention: str = "exact", **config: Any
) -> dict[str, Any]:
    """Params and MACs of one module with formulas and the per-operation breakdown."""
    spec = attention.get_attention(module)
    cost = attention.attention_cost(module, channels, height, width, convention, **config)
    formula = attention.attention_formula(module, channels, height, width, convention, **config)
    resolved = spec.make_config(channels, **config)
    return {
        "module": module,
        "title": spec.title,
        "citation": spec.citation,
        "shape": {"channels": channels, "height": height, "width": width},
        "config": {f: getattr(resolved, f) for f in spec.option_names()},
        **cost.to_dict(),
        "params_formula": formula.params_text(),
        "macs_formula": formula.macs_text(),
        "params_formula_paper_style": formula.params_text(ideal=True),
        "macs_formula_paper_style": formula.macs_text(ideal=True),
        "where": formula.where(),
    }


def _cost_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "module",
        metavar="MODULE",
        nargs="?",
        help=f"an attention module: {', '.join(attention.list_attention())}",
    )
    shape = parser.add_argument_group("module shape (default 512×14×14)")
    shape.add_argument("--channels", type=positive_int, help="channels m")
    shape.add_argument("--height", type=positive_int, help="feature-map height h")
    shape.add_argument("--width", type=positive_int, help="feature-map width w")
    _add_module_options(parser, defaults=False)
    network = parser.add_argument_group("network (instead of MODULE)")
    network.add_argument("--backbone", choices=list(BACKBONES), help="a whole MobileNet")
    network.add_argument(
        "--width-mult", type=positive_float, default=1.0, help="width multiplier α (default 1.0)"
    )
    network.add_argument("--resolution", type=positive_int, default=224, help="input side (default 224)")
    network.add_argument("--num-classes", type=positive_int, default=1000, help="classes (default 1000)")
    network.add_argument("--in-channels", type=positive_int, default=3, help="input channels (default 3)")
    network.add_argument(
        "--stem",
        choices=STEMS,
        default="imagenet",
        help="small: stride-1 stem and layer 2, for 32×32 inputs (default imagenet)",
    )
    network.add_argument(
        "--plan",
        default="",
        metavar="PLAN",
        help="placements, e.g. 'replace@9:ulsam:groups=4,insert@13:groups=8'",
    )
    network.add_argument("--breakdown", action="store_true", help="per-layer table from the closed form")
    network.add_argument(
        "--trace", action="store_true", help="with --breakdown: fvcore's traced count per layer"
    )
    parser.add_argument("--convention", choices=CONVENTIONS, default="exact", help="default: exact")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    _add_output_args(parser)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; allowed: a positive number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not positive; allowed: a positive number")
    return value


_MODULE_ONLY = ("channels", "height", "width", "reduction", "inner_channels", "groups", "subsample")
_NETWORK_ONLY = {
    "plan": "",
    "breakdown": False,
    "trace": False,
    "width_mult": 1.0,
    "resolution": 224,
    "num_classes": 1000,
    "in_channels": 3,
    "stem": "imagenet",
}


def _cost_run(args: argparse.Namespace) -> int:
    if (args.module is None) == (args.backbone is None):
        raise InvalidInput("give either MODULE or --backbone (not both, not neither)")
    if args.backbone is None:
        stray = [k for k, default in _NETWORK_ONLY.items() if getattr(args, k) != default]
        if stray:
            raise InvalidInput(f"--{stray[0].replace('_', '-')} applies to --backbone, not to a module")
        report = module_cost_report(
            args.module,
            args.channels or 512,
            args.height or 14,
            args.width or 14,
            args.convention,
            **_module_options(args),
        )
        emit(to_json(report) if args.json else _cost_text(report), args.output)
        return 0
    stray = [k for k in _MODULE_ONLY if getattr(args, k) is not None]
    if stray:
        raise InvalidInput(
            f"--{stray[0].replace('_', '-')} applies to a MODULE; use --plan options with --backbone"
        )
    if args.trace and not args.breakdown:
        raise InvalidInput("--trace needs --breakdown")
    from ulsam_nas.backbones.report import network_report, network_text

    report = network_report(
        args.backbone,
        args.width_mult,
        args.plan,
        args.resolution,
        args.num_classes,
        args.in_channels,
        args.stem,
        args.convention,
        breakdown=args.breakdown,
        trace=args.trace,
    )
    emit(to_json(report) if args.json else network_text(report), args.output)
    return 0


def _cost_text(report: dict[str, Any]) -> str:
    shape = report["shape"]
    config = ", ".join(f"{k}={v}" for k, v in report["config"].items())
    lines = [
        f"{report['title']} on a {shape['channels']}×{shape['height']}×{shape['width']} map"
        + (f" ({config})" if config else "")
        + f", {report['convention']} convention, unit MAC",
        f"  params {report['params']:>15,}  = {report['params_formula']}",
        f"  MACs   {report['macs']:>15,}  = {report['macs_formula']}",
    ]
    if report["where"]:
        lines.append(f"  where {report['where']}")
    lines.append("  params by kind: " + _listing(report["params_by"]))
    lines.append("  MACs by op:     " + _listing(report["macs_by"]))
    if report["ops"]:
        lines.append("  other ops (elements): " + _listing(report["ops"]))
    return "\n".join(lines) + "\n"


def _listing(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counts.items()) or "none"


# -- verify ----------------------------------------------------------------------------------
def _verify_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--modules", nargs="+", metavar="MODULE", help="a subset of modules (default: all)")
    parser.add_argument(
        "--samples",
        type=_non_negative_int,
        default=3,
        help="random shapes/configs per module besides the paper's shape (default 3)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random shapes (default 0)")
    parser.add_argument("--batch", type=positive_int, default=1, help="batch size traced (default 1)")
    parser.add_argument(
        "--backbones",
        action="store_true",
        help="also SAMPLES MobileNets with random α, resolution <= 128, stem and plan",
    )
    parser.add_argument(
        "--no-known-different", action="store_true", help="skip ptflops' pytorch backend and thop"
    )
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument("--report", metavar="DIR", help="also write DIR/verification.md and .csv")
    _add_output_args(parser)


def _non_negative_int(text: str) -> int:
    return 0 if text.strip() == "0" else positive_int(text)


def _verify_run(args: argparse.Namespace) -> int:
    from ulsam_nas.verify import attention_cases, network_cases, verify
    from ulsam_nas.verify.cases import AnyCase
    from ulsam_nas.verify.render import mismatch_lines, verify_csv, verify_markdown

    if args.modules:
        for name in args.modules:
            attention.get_attention(name)
    cases: list[AnyCase] = list(attention_cases(args.modules, args.samples, args.seed))
    if args.backbones:
        cases += network_cases(args.samples, args.seed)
    result = verify(cases, batch=args.batch, known_different=not args.no_known_different)
    command = (
        "ulsam-nas verify " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["verify"] else "ulsam-nas verify"
    )
    markdown = verify_markdown(result, command.strip())
    if args.report:
        from pathlib import Path

        from ulsam_nas.output import write_atomic

        write_atomic(Path(args.report) / "verification.md", markdown)
        write_atomic(Path(args.report) / "verification.csv", verify_csv(result))
    emit(to_json(result.to_json()) if args.json else markdown, args.output)
    if not result.all_match and not args.json:
        for line in mismatch_lines(result):
            print(f"mismatch: {line}", file=sys.stderr)
    return 0 if result.all_match else 1


# -- explain ---------------------------------------------------------------------------------
def _explain_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("module", metavar="MODULE", help=f"one of: {', '.join(attention.list_attention())}")
    _add_shape_args(parser)
    _add_module_options(parser, defaults=False)
    parser.add_argument("--no-trace", action="store_true", help="only the closed-form projections")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    _add_output_args(parser)


def _explain_run(args: argparse.Namespace) -> int:
    from ulsam_nas.verify import Case, explain
    from ulsam_nas.verify.render import explain_text

    spec = attention.get_attention(args.module)
    config = spec.make_config(args.channels, **_module_options(args))
    given = {f: getattr(config, f) for f in spec.option_names() if f in _module_options(args)}
    attention.attention_cost(args.module, args.channels, args.height, args.width, **given)  # validates
    explanation = explain(
        Case(args.module, args.channels, args.height, args.width, given), trace=not args.no_trace
    )
    emit(to_json(explanation.to_json()) if args.json else explain_text(explanation), args.output)
    return 0


# -- search ----------------------------------------------------------------------------------
def _search_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", metavar="STUDY.yaml", help="a study file, e.g. studies/default.yaml")
    parser.add_argument("--trials", type=positive_int, help="finished trials wanted in the study")
    parser.add_argument("--budget-mmacs", type=positive_float, help="MAC budget in millions")
    parser.add_argument("--budget-mparams", type=positive_float, help="parameter budget in millions")
    parser.add_argument(
        "--budget-latency-ms",
        type=positive_float,
        help="latency budget per image on the training device, measured before training",
    )
    parser.add_argument("--storage", help="an Optuna storage URL or a journal file path")
    parser.add_argument("--study-name", help="the study's name in the storage")
    parser.add_argument("--seed", type=int, help="sampler and proxy-training seed")
    parser.add_argument("--data", help="synthetic, fashion-mnist, an image folder or a .npz file")
    parser.add_argument("--images", type=positive_int, help="training images")
    parser.add_argument("--epochs", type=positive_int, help="proxy-training epochs")
    parser.add_argument(
        "--seeds", type=positive_int, help="paired seeds per candidate at the first rung (default 1)"
    )
    parser.add_argument(
        "--no-schedule",
        action="store_true",
        help="the search stage only: no later rungs and no confirmation (a quick look)",
    )
    parser.add_argument("--resolution", type=positive_int, help="input resolution")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), help="training device")
    parser.add_argument(
        "--workers", type=positive_int, default=1, help="processes on this machine (default 1)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar, one line per trial")
    parser.add_argument(
        "--dry-run", action="store_true", help="space size, feasible fraction, estimated time"
    )
    parser.add_argument("--json", action="store_true", help="with --dry-run: one JSON document")


def _study_overrides(args: argparse.Namespace) -> dict[str, Any]:
    seed = getattr(args, "seed", None)
    synthetic = getattr(args, "data", None) == "synthetic" and getattr(args, "images", None) is None
    return {
        # --data synthetic means the generated set's own sizes unless --images says otherwise.
        **({"proxy.train_images": SYNTHETIC_TRAIN, "proxy.val_images": SYNTHETIC_VAL} if synthetic else {}),
        "trials": getattr(args, "trials", None),
        "budget.mmacs": getattr(args, "budget_mmacs", None),
        "budget.mparams": getattr(args, "budget_mparams", None),
        "budget.latency_ms": getattr(args, "budget_latency_ms", None),
        "storage": getattr(args, "storage", None),
        "name": getattr(args, "study_name", None),
        "sampler.seed": seed,
        "proxy.seed": seed,
        "proxy.data": getattr(args, "data", None),
        **({"proxy.train_images": getattr(args, "images", None)} if not synthetic else {}),
        "proxy.epochs": getattr(args, "epochs", None),
        "proxy.seeds": getattr(args, "seeds", None),
        **({"schedule": None} if getattr(args, "no_schedule", False) else {}),
        "proxy.resolution": getattr(args, "resolution", None),
        "proxy.device": getattr(args, "device", None),
    }


def _search_run(args: argparse.Namespace) -> int:
    import os
    import subprocess

    from ulsam_nas.search.study import Search, dry_run, load_study_config, prepare, redact

    config = load_study_config(args.study, _study_overrides(args))
    threads = os.environ.get("ULSAM_NAS_THREADS")
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    prepared = prepare(config)
    if args.dry_run:
        plan = dry_run(prepared)
        if args.json:
            emit(to_json(plan), None)
        else:
            print(
                f"{plan['candidates']:,} configurations, {plan['feasible']:,} within the budget "
                f"({plan['feasible_fraction']:.1%}; "
                f"{plan['feasible_mmacs'][0]:.2f}–{plan['feasible_mmacs'][2]:.2f} MMACs); "
                f"{plan['data']}; about {plan['seconds_per_trial']:.0f} s a trial, "
                f"{plan['estimated_minutes']:.1f} min for {plan['trials']} trials"
            )
        return 0
    search = Search(prepared)
    children = []
    if args.workers > 1:
        env = {**os.environ, "ULSAM_NAS_THREADS": str(max(1, (os.cpu_count() or 1) // args.workers))}
        children = [
            subprocess.Popen(
                [sys.executable, "-m", "ulsam_nas", *_without_workers(sys.argv[1:]), "--quiet"], env=env
            )
            for _ in range(args.workers - 1)
        ]
        import torch

        torch.set_num_threads(int(env["ULSAM_NAS_THREADS"]))
    progress = _log_lines(search) if args.quiet else _progress_bar(search)
    finished = search.run(config.trials, progress)
    codes = [child.wait() for child in children]
    finished = search.finished()
    where = redact(config.storage or "")
    print(f"{finished}/{config.trials} finished trials in study {config.name!r} ({where})", file=sys.stderr)
    return 0 if finished >= config.trials and not any(c not in (0,) for c in codes) else 1


def _progress_bar(search: Any) -> Any:
    """One tqdm bar per stage (search, then the schedule's rungs and confirmation)."""
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        for name, other in bars.items():
            if name != stage and not other.disable:
                other.close()
                other.disable = True
        if stage not in bars:
            bars[stage] = tqdm(total=total, desc=stage, unit="trial", file=sys.stderr, dynamic_ncols=True)
        bar = bars[stage]
        bar.total = max(total, done)
        bar.n = min(done, bar.total)
        if stage == "search":
            trials = search.study.get_trials(deepcopy=False)
            accuracies = [
                t.user_attrs["accuracy"]
                for t in trials
                if t.user_attrs.get("accuracy") is not None
                and not t.user_attrs.get("over_budget")
                and t.user_attrs.get("rung", 0) == 0
            ]
            over = sum(bool(t.user_attrs.get("over_budget")) for t in trials)
            bar.set_postfix(best=f"{max(accuracies):.4f}" if accuracies else "-", over_budget=over)
        bar.refresh()

    return update


def _without_workers(argv: list[str]) -> list[str]:
    """The command line a worker process gets: the same, minus --workers (it runs alone)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            out.append(arg)
    return out


def _log_lines(search: Any) -> Any:
    """--quiet: one plain line per finished trial, for logs."""
    seen: set[int] = set()

    def update(stage: str, done: int, total: int) -> None:
        for trial in search.study.get_trials(deepcopy=False):
            if trial.number in seen or trial.state.name not in ("COMPLETE", "PRUNED"):
                continue
            seen.add(trial.number)
            attrs = trial.user_attrs
            accuracy, se = attrs.get("accuracy"), attrs.get("accuracy_se")
            seeds = attrs.get("seeds") or []
            print(
                f"trial {trial.number} ({attrs.get('stage', 'search')}) {trial.state.name.lower()}: "
                f"accuracy {accuracy if accuracy is None else round(accuracy, 4)}"
                + (f" ± {se:.4f} ({len(seeds)} seeds)" if se is not None else "")
                + f", {attrs.get('epochs')} epochs, "
                f"{attrs.get('macs', 0) / 1e6:.3f} MMACs, α {attrs.get('width_mult')}, "
                f"plan {attrs.get('plan') or '(none)'}"
                + (" [over budget, not trained]" if attrs.get("over_budget") else "")
                + (
                    f" [same as trial {attrs['duplicate_of']}]"
                    if attrs.get("duplicate_of") is not None
                    else ""
                ),
                file=sys.stderr,
            )

    return update


# -- best ------------------------------------------------------------------------------------
def _best_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "study", metavar="STUDY.yaml", nargs="?", help="a study file (or --storage and --study-name)"
    )
    parser.add_argument("--storage", help="an Optuna storage URL or a journal file path")
    parser.add_argument("--study-name", help="the study's name in the storage")
    parser.add_argument("--top", type=positive_int, default=5, help="how many configurations (default 5)")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    _add_output_args(parser)


def _best_run(args: argparse.Namespace) -> int:
    from ulsam_nas.reporting import resolve_study
    from ulsam_nas.search.study import best_candidates, open_study

    storage, name = resolve_study(args.study, args.storage, args.study_name)
    result = best_candidates(open_study(storage, name), args.top)
    if args.json:
        emit(to_json(result), args.output)
        return 0
    emit(best_text(result), args.output)
    return 0


def best_text(result: dict[str, Any]) -> str:
    """``best`` for people: the recommendation, the ranked candidates, noise and training spent."""
    lines = [
        f"Study {result['study']!r}: {result['scored_trials']} scored trials, "
        f"{result['trained_trials']} trained.",
        f"Recommendation: {result['recommendation']}.",
    ]
    if result["detectable_difference"] is not None:
        lines.append(
            f"Smallest difference the final stage detects at 80% power: "
            f"{result['detectable_difference'] * 100:.2f} points."
        )
    lines += [f"Note: {note}." for note in result["notes"]]
    lines.append("")
    for i, c in enumerate(result["candidates"], 1):
        latency = f"{c['latency_ms']:.2f} ms" if c["latency_ms"] is not None else "-"
        se = f" ± {c['accuracy_se']:.4f}" if c["accuracy_se"] is not None else ""
        tie = {True: "tied with best", False: "worse than best", None: ""}[c["tied_with_best"]]
        if i == 1 and result["confirmed"]:
            tie = "best"
        lines.append(
            f"{i}. accuracy {c['accuracy']:.4f}{se} ({len(c['seeds'])} seeds, {c['stage']}, "
            f"{c['epochs']} epochs) {tie}\n"
            f"   {c['macs'] / 1e6:.3f} MMACs  {c['params']:,} params  latency {latency}  "
            f"α {c['width_mult']:g}  plan {c['plan'] or '(none)'}\n"
            f"   {c['create_network']}"
        )
    lines.append("")
    lines.append("Seed noise per fidelity (sd in points; reference = widest plain backbone in budget):")
    for row in result["noise"]:
        ref = (
            f"reference sd {row['reference_sd'] * 100:.2f} over {row['reference_seeds']} seeds"
            if row["reference_sd"] is not None
            else f"reference: {row['reference_seeds']} seed(s), no spread"
        )
        pooled = (
            f", pooled sd {row['pooled_sd'] * 100:.2f} ({row['pooled_dof']} df)" if row["pooled_sd"] else ""
        )
        images = "all" if row["images"] is None else f"{row['images']:,}"
        lines.append(f"  rung {row['rung']} ({row['epochs']} epochs × {images} images): {ref}{pooled}")
    lines.append("Training spent per stage:")
    for row in result["training"]:
        lines.append(
            f"  {row['stage']}: {row['trials']} trials, {row['seed_runs']} seed runs, "
            f"{row['candidate_epochs']:.1f} candidate-epochs, {row['train_seconds']:.0f} s"
        )
    return "\n".join(lines) + "\n"


# -- report ---------------------------------------------------------------------------------
def _report_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "study", metavar="STUDY.yaml", nargs="?", help="a study file (or --storage and --study-name)"
    )
    parser.add_argument("--storage", help="an Optuna storage URL or a journal file path")
    parser.add_argument("--study-name", help="the study's name in the storage")
    parser.add_argument(
        "--out", help="the report folder itself (default reports/<study-name>/); replaced atomically"
    )
    parser.add_argument("--json", action="store_true", help="print the written paths as JSON")


def _report_run(args: argparse.Namespace) -> int:
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


# -- calibrate -------------------------------------------------------------------------------
def _calibrate_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", metavar="STUDY.yaml", help="a study file, e.g. studies/default.yaml")
    parser.add_argument(
        "--architectures", type=positive_int, default=12, help="architectures to train (default 12)"
    )
    parser.add_argument("--seeds", type=positive_int, default=2, help="paired seeds per fidelity (default 2)")
    parser.add_argument("--storage", help="an Optuna storage URL or a journal file path")
    parser.add_argument("--seed", type=int, help="sampling and training seed")
    parser.add_argument("--data", help="synthetic, fashion-mnist, an image folder or a .npz file")
    parser.add_argument("--images", type=positive_int, help="proxy training images")
    parser.add_argument("--epochs", type=positive_int, help="proxy training epochs")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), help="training device")
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="where to write calibration.md/.csv/.png (default: reports/<study name>/)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _calibrate_run(args: argparse.Namespace) -> int:
    from ulsam_nas.search.calibrate import (
        calibration_text,
        plan_calibration,
        run_calibration,
        write_calibration,
    )
    from ulsam_nas.search.study import load_study_config

    config = load_study_config(args.study, _study_overrides(args))
    calibration = plan_calibration(config, args.architectures, args.seeds)
    progress = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=2 * len(calibration.architectures), desc="calibrate", unit="eval", file=sys.stderr)

        def progress(done: int, total: int) -> None:
            bar.n = done
            bar.refresh()

    result = run_calibration(calibration, progress)
    folder = args.out or f"reports/{config.name}"
    result["written"] = write_calibration(result, folder)
    emit(to_json(result) if args.json else calibration_text(result), None)
    return 0


# -- dispatch --------------------------------------------------------------------------------
Command = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]

COMMANDS: dict[str, Command] = {
    "table": ("the ULSAM paper's overhead table for any feature-map shape", _table_args, _table_run),
    "cost": ("params, MACs and formulas of an attention module or a MobileNet", _cost_args, _cost_run),
    "verify": ("closed forms against fvcore, ptflops and torch's FlopCounterMode", _verify_args, _verify_run),
    "explain": ("what each FLOP counter counts for one module, term by term", _explain_args, _explain_run),
    "search": (
        "budget-constrained Optuna search over ULSAM's groups, placement and width",
        _search_args,
        _search_run,
    ),
    "best": ("the best configurations of a study, as plans you can build", _best_args, _best_run),
    "report": (
        "Pareto plots, tables, the groups ablation and an HTML page from a study's storage",
        _report_args,
        _report_run,
    ),
    "calibrate": (
        "how well the proxy ranks architectures against a higher fidelity (Kendall τ, Spearman ρ)",
        _calibrate_args,
        _calibrate_run,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description=__doc__.splitlines()[0] if __doc__ else None, allow_abbrev=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, (summary, add_args, run) in COMMANDS.items():
        command = sub.add_parser(name, help=summary, description=summary, allow_abbrev=False)
        add_args(command)
        command.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except InvalidInput as error:
        print(f"{PROG} {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
