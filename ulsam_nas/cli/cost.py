"""``ulsam-nas cost``: params, MACs and formulas of one attention module or of a MobileNet."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ulsam_nas import attention
from ulsam_nas.attention.report import module_cost_report, module_cost_text
from ulsam_nas.backbones.network import BACKBONES, STEMS, BackboneShape
from ulsam_nas.cli.arguments import (
    MODULE_OPTIONS,
    add_latency_arguments,
    add_module_options,
    add_output_args,
    check_latency_arguments,
    module_options,
    positive_float,
    positive_int,
)
from ulsam_nas.cost.cost import CONVENTIONS
from ulsam_nas.errors import InvalidInput
from ulsam_nas.networks import Network
from ulsam_nas.output import emit, to_json

SUMMARY = (
    "params, MACs and formulas of an attention module, a built-in backbone with modules placed, "
    "or your own network"
)
EXAMPLES = """
  ulsam-nas cost ulsam --channels 96 --height 7 --width 5 --groups 3
  ulsam-nas cost --backbone mobilenet_v1 --width-mult 0.5 --plan "replace@9:ulsam:groups=4"
  ulsam-nas cost --backbone mobilenet_v2 --plan "insert@*:ulsam,insert@5:eca" --breakdown
  ulsam-nas cost --backbone mobilenet_v3_small --plan "swap@*:ulsam:groups=4,swap@6:none"
  ulsam-nas cost --backbone resnet18 --plan "replace@*:se" --convention paper --json
  ulsam-nas cost ulsam --channels 64 --height 16 --width 16 --groups 4 --train
  ulsam-nas cost --backbone mobilenet_v1 --width-mult 0.5 --plan "replace@9:ulsam" --train --breakdown
  ulsam-nas cost --model examples.mynets:resnet_like --input-size 3,32,32 --positions
  ulsam-nas cost --model examples/mynets.py:resnet_like --model-args width=32 --input-size 3,32,32 \\
      --plan "insert@layer*.*:eca"
  ulsam-nas cost --model examples.mynets:resnet_like --input-size 3,32,32 \\
      --plan "insert@layer3.1:ulsam:groups=4,replace@layer2.1:eca"
"""

# Options that belong to a network, with their defaults (given for a MODULE: refused).
NETWORK_DEFAULTS = {
    "plan": "",
    "breakdown": False,
    "trace": False,
    "width_mult": 1.0,
    "resolution": 224,
    "num_classes": 1000,
    "in_channels": 3,
    "stem": "imagenet",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "module",
        metavar="MODULE",
        nargs="?",
        help=f"an attention module: {', '.join(attention.list_attention())} (or --backbone, or --model)",
    )
    shape = parser.add_argument_group("module shape (default 512×14×14)")
    shape.add_argument("--channels", type=positive_int, help="channels m")
    shape.add_argument("--height", type=positive_int, help="feature-map height h")
    shape.add_argument("--width", type=positive_int, help="feature-map width w")
    add_module_options(parser)
    network = parser.add_argument_group("a built-in network (instead of MODULE)")
    network.add_argument(
        "--backbone",
        choices=list(BACKBONES),
        metavar="NAME",
        help=f"a built-in backbone: {', '.join(BACKBONES)}",
    )
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
        help="where modules go, with --backbone or --model: placements ACTION@WHERE[:MODULE][:KEY=VALUE] "
        "separated by commas. ACTION: insert (after the layer), replace (the layer; only where input "
        "and output shapes match), swap (a block's own SE, MobileNetV3; MODULE none removes it). "
        "WHERE: a layer index from 0, * (every index where the action is allowed; a named index "
        "overrides it), or with --model a module path (--positions lists them) or a path pattern "
        "(layer*.1: * within one path component, ** across, * alone every position). MODULE defaults to "
        "ulsam. E.g. 'replace@9:ulsam:groups=4,insert@13:groups=8', 'swap@*:eca,swap@6:none', "
        "'insert@layer3.1:se:reduction=8'. none or empty: the plain network",
    )
    network.add_argument("--breakdown", action="store_true", help="per-layer table from the closed form")
    network.add_argument(
        "--trace",
        action="store_true",
        help="--backbone with --breakdown: fvcore's traced count per layer; --model: the totals "
        "checked against torch's FlopCounterMode, fvcore and ptflops (aten), each in its own process",
    )
    add_model_arguments(parser)
    add_latency_arguments(parser, "with --backbone or --model")
    parser.add_argument("--convention", choices=CONVENTIONS, default="exact", help="default: exact")
    parser.add_argument(
        "--train",
        action="store_true",
        help="also one training step's MACs (forward, input and weight gradients where autograd "
        "computes them; exact convention) and what torch's FlopCounterMode counts for it",
    )
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    add_output_args(parser)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    model = parser.add_argument_group(
        "any network (instead of MODULE or --backbone; --plan names module paths)"
    )
    model.add_argument(
        "--model",
        metavar="MODULE:FACTORY",
        help="a network from your code: MODULE:FACTORY (MODULE imported from the current directory or "
        "the Python path) or FILE.py:FACTORY, e.g. examples.mynets:resnet_like or "
        "examples/mynets.py:resnet_like; FACTORY is called with --model-args",
    )
    model.add_argument(
        "--model-args",
        metavar="ARGS",
        help="keyword arguments of FACTORY: a JSON object or k=v,k2=v2 (values read as JSON where "
        "they are: numbers, true/false, null), e.g. num_classes=10",
    )
    model.add_argument(
        "--input-size",
        nargs="+",
        metavar="C,H,W",
        help="the input's channels, height and width for --model: 3,224,224 or 3 224 224",
    )
    model.add_argument(
        "--positions", action="store_true", help="list the module paths a --plan can insert after or replace"
    )
    model.add_argument(
        "--allow-remainder",
        action="store_true",
        help="list operators without a closed form (left out of the totals) instead of refusing the network",
    )


def add_latency(
    report: dict[str, Any], text: str, network: Network, args: argparse.Namespace
) -> tuple[str, dict[str, Any]]:
    """The report and its text with the plan's predicted latency, when --latency asks for it."""
    if args.latency is None:
        return text, report
    from ulsam_nas.latency import latency_line, latency_report

    table = Path(args.latency_table) if args.latency_table else None
    found = latency_report(network, args.plan, args.latency, args.threads, args.batch, table)
    report = {**report, "latency": found}
    return text.rstrip("\n") + "\n" + latency_line(found) + "\n", report


MODEL_ONLY = ("input_size", "positions", "allow_remainder", "model_args")


def run(args: argparse.Namespace) -> int:
    if sum(x is not None for x in (args.module, args.backbone, args.model)) != 1:
        raise InvalidInput("give either MODULE or --backbone or --model (exactly one of them)")
    check_latency_arguments(args)
    if args.train and args.convention != "exact":
        raise InvalidInput(
            f"--train counts a training step in the exact convention; --convention {args.convention} "
            "has no backward pass (drop one of them)"
        )
    if args.latency is not None and args.module is not None:
        raise InvalidInput(
            "--latency applies to --backbone or --model; a module's latency at a shape is a column of "
            "'ulsam-nas table --latency RUNTIME'"
        )
    if args.model is None:
        stray = [k for k in MODEL_ONLY if getattr(args, k) not in (None, False)]
        if stray:
            raise InvalidInput(f"--{stray[0].replace('_', '-')} applies to --model")
    else:
        return run_model(args)
    if args.backbone is None:
        stray = [k for k, default in NETWORK_DEFAULTS.items() if getattr(args, k) != default]
        if stray:
            raise InvalidInput(f"--{stray[0].replace('_', '-')} applies to --backbone, not to a module")
        report = module_cost_report(
            args.module,
            args.channels or 512,
            args.height or 14,
            args.width or 14,
            args.convention,
            args.train,
            **module_options(args),
        )
        emit(to_json(report) if args.json else module_cost_text(report), args.output)
        return 0
    stray = [k for k in ("channels", "height", "width", *MODULE_OPTIONS) if getattr(args, k) is not None]
    if stray:
        raise InvalidInput(
            f"--{stray[0].replace('_', '-')} applies to a MODULE; use --plan options with --backbone"
        )
    if args.trace and not args.breakdown:
        raise InvalidInput("--trace needs --breakdown")
    from ulsam_nas.verify.backbone_report import network_report, network_text

    network = {
        k: getattr(args, k) for k in ("width_mult", "resolution", "num_classes", "in_channels", "stem")
    }
    options = {
        "plan": args.plan,
        "convention": args.convention,
        "breakdown": args.breakdown,
        "trace": args.trace,
        "train": args.train,
    }
    report = network_report(args.backbone, **options, **network)
    table = BackboneShape(args.backbone, **network).table()
    text, report = add_latency(report, network_text(report), table, args)
    emit(to_json(report) if args.json else text, args.output)
    return 0


def run_model(args: argparse.Namespace) -> int:
    """``--model MODULE:FACTORY --input-size C,H,W``: the closed form of any traceable network."""
    stray = [k for k in ("channels", "height", "width", *MODULE_OPTIONS) if getattr(args, k) is not None]
    if stray:
        raise InvalidInput(
            f"--{stray[0].replace('_', '-')} applies to a MODULE; use --plan options with --model"
        )
    backbone_only = ("width_mult", "resolution", "num_classes", "in_channels", "stem")
    stray = [k for k in backbone_only if getattr(args, k) != NETWORK_DEFAULTS[k]]
    if stray:
        raise InvalidInput(
            f"--{stray[0].replace('_', '-')} applies to --backbone; --model takes --input-size"
        )
    if not args.input_size:
        raise InvalidInput("--model needs --input-size C,H,W (e.g. 3,224,224)")
    if args.trace and args.allow_remainder:
        raise InvalidInput(
            "--trace compares whole totals with the counters, so it needs every operator costed; "
            "drop --allow-remainder"
        )
    from ulsam_nas.analysis import analyze
    from ulsam_nas.analysis.graph import UncostedOperators
    from ulsam_nas.analysis.source import ModelSource
    from ulsam_nas.verify.model_report import (
        analysis_report,
        analysis_text,
        parse_input_size,
        parse_model_args,
    )

    size = parse_input_size(args.input_size)
    source = ModelSource(args.model, tuple(parse_model_args(args.model_args).items()))
    try:
        analysis = analyze(source(), size, strict=not args.allow_remainder)
    except UncostedOperators as error:  # its remedy, said as a flag here
        raise InvalidInput(error.text("--allow-remainder")) from None
    report = analysis_report(
        analysis,
        model=args.model,
        plan=args.plan,
        convention=args.convention,
        breakdown=args.breakdown,
        positions=args.positions,
        counters=source if args.trace else None,
        model_args=dict(source.kwargs),
        train=args.train,
    )
    text, report = add_latency(report, analysis_text(report), analysis, args)
    emit(to_json(report) if args.json else text, args.output)
    return 0
