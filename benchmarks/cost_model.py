"""How fast is the closed-form network cost compared with tracing the same network?

In one run on one machine: the closed-form cost of MobileNetV2 (α 1.0, 224×224, 1000 classes)
with a different random 4-placement plan on every call, one fvcore trace and one
FlopCounterMode pass of such networks, FlopCounterMode on such a network built on the meta device
(the fair modern baseline: no data, no arithmetic; building it and counting, and counting alone),
and the numpy batch evaluator.  Prints the ratios and
writes them to reports/benchmarks.md (section "cost_model").

    python benchmarks/cost_model.py [--plans 5000]
"""

from __future__ import annotations

import argparse
import logging
import platform
import random
import statistics
import time
import warnings

import numpy as np
import torch
from _report import write_section

from ulsam_nas.backbones import Placement, backbone_table, create_network, network_cost, plan_text
from ulsam_nas.backbones import network as network_module
from ulsam_nas.networks.batch import CostTable

BACKBONE, WIDTH, RESOLUTION = "mobilenet_v2", 1.0, 224


def random_plans(count: int, seed: int) -> list[list[Placement]]:
    table = backbone_table(BACKBONE, WIDTH, RESOLUTION)
    replaceable = set(table.replaceable())
    rng = random.Random(seed)
    plans, seen = [], set()
    while len(plans) < count:
        plan = [
            Placement(
                "replace" if i in replaceable and rng.random() < 0.5 else "insert",
                i,
                "ulsam",
                groups=rng.choice([1, 2, 4, 8]),
            )  # every width of MobileNetV2 1.0 is a multiple of 8
            for i in sorted(rng.sample(range(1, 18), 4))
        ]
        if (text := plan_text(plan)) not in seen:
            seen.add(text)
            plans.append(plan)
    return plans


def per_call(function, items) -> float:
    start = time.perf_counter()
    for item in items:
        function(item)
    return (time.perf_counter() - start) / len(items)


def clear_placements() -> None:
    """Forget every placement the table resolved and costed (its memo) and the modules' costs."""
    backbone_table(BACKBONE, WIDTH, RESOLUTION).memo.clear()
    network_module._module_cost.cache_clear()


def meta_seconds(plans: list[list[Placement]]) -> tuple[float, float]:
    """The fair modern baseline (Lightning's ``measure_flops``): FlopCounterMode on a network built
    on the meta device, no data and no arithmetic.  Medians of (build + count, count alone)."""
    from torch.utils.flop_counter import FlopCounterMode

    built, counted = [], []
    for plan in plans:
        start = time.perf_counter()
        with torch.device("meta"):
            model = create_network(BACKBONE, WIDTH, plan, RESOLUTION).eval()
            x = torch.empty(1, 3, RESOLUTION, RESOLUTION)
        made = time.perf_counter()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
        counter.get_total_flops()
        end = time.perf_counter()
        built.append(end - start)
        counted.append(end - made)
    return statistics.median(built), statistics.median(counted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=5000)
    parser.add_argument("--traces", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    plans = random_plans(args.plans, seed=0)

    # Closed form, backbone table cached, placements seen before (a search's steady state).
    network_cost(BACKBONE, WIDTH, plans[0], RESOLUTION)
    warm = per_call(lambda p: network_cost(BACKBONE, WIDTH, p, RESOLUTION), plans)

    # Backbone table cached, every placement new to the caches.
    def cold_placements(p):
        clear_placements()
        network_cost(BACKBONE, WIDTH, p, RESOLUTION)

    cached_backbone = per_call(cold_placements, plans[:500])

    # Nothing cached: the backbone table is rebuilt on every call.
    def uncached(p):
        network_module._table_of.cache_clear()
        network_module._module_cost.cache_clear()
        network_cost(BACKBONE, WIDTH, p, RESOLUTION)

    fully_uncached = per_call(uncached, plans[:200])

    from fvcore.nn import FlopCountAnalysis
    from torch.utils.flop_counter import FlopCounterMode

    fvcore_times, torch_times = [], []
    x = torch.randn(1, 3, RESOLUTION, RESOLUTION)
    for plan in plans[: args.traces]:
        model = create_network(BACKBONE, WIDTH, plan, RESOLUTION).eval()
        with torch.no_grad():
            start = time.perf_counter()
            analysis = FlopCountAnalysis(model, (x,))
            analysis.unsupported_ops_warnings(False)
            analysis.uncalled_modules_warnings(False)
            analysis.total()
            fvcore_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            with FlopCounterMode(display=False) as counter:
                model(x)
            counter.get_total_flops()
            torch_times.append(time.perf_counter() - start)
    fvcore_s, torch_s = statistics.median(fvcore_times), statistics.median(torch_times)
    meta_build_s, meta_count_s = meta_seconds(plans[: args.traces])

    widths = [0.35, 0.5, 0.75, 1.0, 1.4]
    slots = [
        [None] + [Placement(a, i, "ulsam", groups=g) for a in ("insert", "replace") for g in (1, 2, 4, 8, 16)]
        for i in (3, 5, 8, 12, 15)
    ]  # g = 16 is invalid at some widths: the evaluator flags those
    build_start = time.perf_counter()
    cost_table = CostTable([backbone_table(BACKBONE, w, RESOLUTION) for w in widths], slots)
    build_s = time.perf_counter() - build_start
    rng = np.random.default_rng(0)
    count = 2_000_000
    width_index = rng.integers(0, len(widths), count)
    choices = rng.integers(0, 11, (count, len(slots)))
    start = time.perf_counter()
    cost_table.evaluate(width_index, choices)
    batch_rate = count / (time.perf_counter() - start)

    lines = [
        "## Cost model (`python benchmarks/cost_model.py`)",
        "",
        f"MobileNetV2 α {WIDTH}, {RESOLUTION}×{RESOLUTION}, 1000 classes, a different random 4-placement "
        f"ULSAM plan on every call ({args.plans} distinct plans); one CPU thread; "
        f"{platform.machine()}, torch {torch.__version__}. fvcore and FlopCounterMode: medians of "
        f"{args.traces} traces.",
        "",
        "| measurement | time per network | speed-up over an fvcore trace | over FlopCounterMode "
        "on meta, build + count | over FlopCounterMode on meta, count alone |",
        "|---|---|---|---|---|",
        *(
            f"| closed form, {what} | {seconds * 1e6:.1f} µs | {fvcore_s / seconds:,.0f}× | "
            f"{meta_build_s / seconds:,.0f}× | {meta_count_s / seconds:,.0f}× |"
            for what, seconds in (
                ("backbone cached, placements seen before", warm),
                ("backbone cached, every placement new", cached_backbone),
                ("nothing cached", fully_uncached),
            )
        ),
        f"| fvcore `FlopCountAnalysis(...).total()` | {fvcore_s * 1e3:.0f} ms | 1× | | |",
        f"| `FlopCounterMode` forward on the built network | {torch_s * 1e3:.0f} ms | "
        f"{fvcore_s / torch_s:.1f}× | | |",
        f"| `FlopCounterMode` on the meta device, build + count | {meta_build_s * 1e3:.0f} ms | "
        f"{fvcore_s / meta_build_s:.1f}× | 1× | |",
        f"| `FlopCounterMode` on the meta device, count alone | {meta_count_s * 1e3:.0f} ms | "
        f"{fvcore_s / meta_count_s:.1f}× | | 1× |",
        "",
        f"Batch evaluator (`CostTable`, 5 widths × 5 slots × 11 options): built in {build_s * 1e3:.0f} ms, "
        f"then {batch_rate:,.0f} configurations per second ({count:,} random configurations in one call).",
    ]
    text = "\n".join(lines)
    print(text)
    print(f"\nwritten to {write_section('cost_model', text)}")


if __name__ == "__main__":
    main()
