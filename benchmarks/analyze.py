"""How fast is ``Analysis.cost(plan)`` compared with tracing the network the plan builds?

In one run on one machine, for ResNet-18 and MobileNetV2 (``create_network``, analyzed as any
model is: by tracing), both 1000 classes at 224×224: ``analyze`` once, then the closed-form
cost of a different random plan on every call
(1–4 modules of any registered kind inserted after or replacing module paths) and of one plan
repeated, against fvcore ``FlopCountAnalysis(...).total()`` on the built networks.  Prints the
medians and ratios and writes them to reports/benchmarks.md (section "analyze").

    python benchmarks/analyze.py [--plans 2000] [--traces 5]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import random
import statistics
import time
import warnings

import torch
from _report import write_section
from torch import nn

from ulsam_nas import InvalidInput, analyze, create_network
from ulsam_nas.attention import get_attention, list_attention

SIZE = (3, 224, 224)


def random_plans(analysis, count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    plans: list[str] = []
    seen: set[str] = set()
    while len(plans) < count:
        segments = []
        for position in rng.sample(analysis.positions, rng.randint(1, 4)):
            action = "replace" if position.replace and rng.random() < 0.5 else "insert"
            module = rng.choice(list_attention())
            config = get_attention(module).sample_config(rng, position.out_shape[0])
            segments.append(
                f"{action}@{position.path}:{module}" + "".join(f":{k}={v}" for k, v in config.items())
            )
        plan = ",".join(segments)
        try:
            analysis.resolve(plan)
        except InvalidInput:
            continue
        if plan not in seen:
            seen.add(plan)
            plans.append(plan)
    # Every timed call below meets its plan for the first time; what plans share (a segment's
    # text, a placement's checks and cost) is cached per analysis and warms up during the run,
    # as it does in a search.
    for cache in (
        analysis._plans,
        analysis._placement_costs,
        analysis._segments,
        analysis._resolved_placements,
    ):
        cache.clear()
    return plans


def timed(function, argument) -> float:
    start = time.perf_counter()
    function(argument)
    return time.perf_counter() - start


def fvcore_seconds(model: nn.Module) -> float:
    from fvcore.nn import FlopCountAnalysis

    x = torch.randn(1, *SIZE)
    with torch.no_grad():
        start = time.perf_counter()
        analysis = FlopCountAnalysis(model.eval(), (x,))
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        analysis.tracer_warnings("none")
        analysis.total()
        return time.perf_counter() - start


def meta_count_seconds(model: nn.Module) -> tuple[float, float]:
    """The fair modern baseline (Lightning's ``measure_flops``): FlopCounterMode on a model on the
    meta device, no data and no arithmetic.  (moving the built network to meta, counting) seconds."""
    from torch.utils.flop_counter import FlopCounterMode

    start = time.perf_counter()
    meta = model.to("meta").eval()
    moved = time.perf_counter() - start
    x = torch.empty(1, *SIZE, device="meta")
    with torch.no_grad():
        start = time.perf_counter()
        with FlopCounterMode(display=False) as counter:
            meta(x)
        counter.get_total_flops()
        return moved, time.perf_counter() - start


def measure(name: str, model: nn.Module, plans_count: int, traces: int) -> dict:
    start = time.perf_counter()
    analysis = analyze(model, SIZE)
    analyze_s = time.perf_counter() - start
    # A module's closed form is compiled once per process for each of its non-numeric options
    # (GC's ratio, ...), whatever the network: warmed on other plans first, so that the median
    # below is the steady state of a session, not its first minutes.
    for plan in random_plans(analysis, plans_count, seed=1):
        analysis.cost(plan)
    plans = random_plans(analysis, plans_count, seed=0)
    new_plan = statistics.median(timed(analysis.cost, p) for p in plans)
    repeated = statistics.median(timed(analysis.cost, plans[0]) for _ in range(plans_count))
    fvcore = statistics.median(fvcore_seconds(analysis.build(p)) for p in plans[:traces])
    meta = [meta_count_seconds(analysis.build(p)) for p in plans[:traces]]
    return {
        "meta_count_s": statistics.median(count for _, count in meta),
        "meta_move_s": statistics.median(moved for moved, _ in meta),
        "name": name,
        "positions": len(analysis.positions),
        "analyze_s": analyze_s,
        "new_plan_s": new_plan,
        "repeated_s": repeated,
        "fvcore_s": fvcore,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=2000)
    parser.add_argument("--traces", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    results = [
        measure("ResNet-18 (`create_network`)", create_network("resnet18"), args.plans, args.traces),
        measure(
            "MobileNetV2 α 1.0 (`create_network`)", create_network("mobilenet_v2"), args.plans, args.traces
        ),
    ]
    lines = [
        "## Analyze (`python benchmarks/analyze.py`)",
        "",
        f"Both networks at 3×224×224, 1000 classes; `Analysis.cost(plan)` on {args.plans} distinct random "
        "plans (1–4 modules of any registered kind, inserted after or replacing module paths), each met "
        "for the first time (after as many other plans, which compile the modules' closed forms once per "
        "process; what plans share is cached per analysis and warms up during the run), and on one plan "
        "repeated; fvcore and FlopCounterMode: medians over "
        f"{args.traces} built plans (FlopCounterMode on the network moved to the meta device: the count "
        f"alone, no data, no arithmetic). One CPU thread; {os.cpu_count()} cores; "
        f"{platform.machine()}, torch {torch.__version__}.",
        "",
        "| network | positions | `analyze` (once) | `cost(plan)`, new plan | `cost(plan)`, repeated | "
        "fvcore trace | FlopCounterMode, meta | speed-up over fvcore / over FlopCounterMode (new plan) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['name']} | {r['positions']} | {r['analyze_s'] * 1e3:.0f} ms | "
            f"{r['new_plan_s'] * 1e6:.0f} µs | "
            f"{r['repeated_s'] * 1e6:.1f} µs | {r['fvcore_s'] * 1e3:.0f} ms | "
            f"{r['meta_count_s'] * 1e3:.1f} ms (+{r['meta_move_s'] * 1e3:.1f} ms to move) | "
            f"{r['fvcore_s'] / r['new_plan_s']:,.0f}× / {r['meta_count_s'] / r['new_plan_s']:,.0f}× |"
        )
    text = "\n".join(lines)
    print(text)
    print(f"\nwritten to {write_section('analyze', text)}")


if __name__ == "__main__":
    main()
