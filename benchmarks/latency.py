"""Does the latency model predict measured latency?  Predicted against measured whole-network
latency over random plans of three study spaces, under PyTorch eager and ONNX Runtime, in one run:

* ``studies/default.yaml``: MobileNetV1 for 32×32 (widths 0.25–0.5) with ULSAM inserted after or
  replacing layers 7, 9, 11, 13 (g 1–16);
* ``studies/mobilenet_v3_small_se.yaml``: MobileNetV3-Small with each SE kept, swapped for ULSAM
  or ECA, or removed;
* ``studies/brought_network.yaml``: a traced network (``examples/mynets.py:resnet_like``) with
  modules inserted after or replacing its blocks.

Per space and runtime: a fresh latency table is measured for what the sampled plans need (its
entries and the seconds that took), every plan is predicted from it (microseconds per plan), and
every plan's network is built and measured whole — twice, in two interleaved passes, so the
measurement's own noise (test-retest) is stated beside the model's error.  Reported: Spearman ρ
and median |relative error| of predicted against measured (the mean of the two passes), the
bias, the 90th percentile of the error, Spearman ρ of MACs against measured latency (what a MAC
budget assumes), and the test-retest agreement.  Then the time to measure the table of a whole
search space (every single placement at every width: what a study with a latency budget
measures at creation), and how much faster a prediction is than measuring one plan.

    python benchmarks/latency.py [--plans 100] [--threads 1] [--runtimes torch,onnxruntime]

Run it on a quiet machine: latency measured while other work shares the cores is that work's
noise too.  Writes its section of reports/benchmarks.md.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _report import write_section
from scipy import stats

from ulsam_nas.latency import QUICK, LatencyTable, TimingPlan, this_device, time_calls
from ulsam_nas.latency.runtimes import runner, torch_threads
from ulsam_nas.search.config import load_study_config
from ulsam_nas.search.latency import space_table
from ulsam_nas.search.parameters import ParameterSpace
from ulsam_nas.search.problem import prepare
from ulsam_nas.search.space import Candidate

ROOT = Path(__file__).resolve().parent.parent
STUDIES = {
    "MobileNetV1 + ULSAM (default study)": "default.yaml",
    "MobileNetV3-Small, SE swapped": "mobilenet_v3_small_se.yaml",
    "traced resnet_like (brought network)": "brought_network.yaml",
}
WHOLE = TimingPlan(rounds=7, round_seconds=0.03, min_calls=3, warm_seconds=0.1, warm_calls=3)


def sample_plans(parameters: ParameterSpace, count: int, seed: int) -> list[tuple[float, str]]:
    """``count`` distinct buildable configurations drawn uniformly, the plain network at each
    width among them."""
    rng = np.random.default_rng(seed)
    found = {(w, "") for w in parameters.space.width_mults}
    while len(found) < count:
        widths, choices = parameters.sample(rng, count)
        for w, row in zip(widths, choices, strict=True):
            found.add(parameters.configuration(int(w), [int(c) for c in row]))
            if len(found) >= count:
                break
    return sorted(found)


def run_space(name: str, study: str, runtime: str, threads: int, count: int) -> dict[str, Any]:
    problem = prepare(load_study_config(ROOT / "studies" / study))
    parameters = problem.parameters
    network = parameters.network
    configurations = sample_plans(parameters, count, seed=0)
    by_width: dict[float, list[str]] = {}
    for width, plan in configurations:
        by_width.setdefault(width, []).append(plan)
    table = LatencyTable(this_device(runtime, threads))
    start = time.perf_counter()
    entries = sum(table.measure(network.at(w), plans, QUICK) for w, plans in by_width.items())
    table_seconds = time.perf_counter() - start
    start = time.perf_counter()
    repeats = 20
    for _ in range(repeats):
        predicted = [table.predict(network.at(w), plan) for w, plan in configurations]
    predict_seconds = (time.perf_counter() - start) / (repeats * len(configurations))
    start = time.perf_counter()
    calls = {}
    for i, (width, plan) in enumerate(configurations):
        torch.manual_seed(0)
        model = network.build(width, plan)
        example = torch.randn(1, *network.at(width).input_size)
        calls[i] = runner(table.device, model, (example,), f"{width:g} {plan}")
    with torch_threads(threads):
        first = time_calls(calls, WHOLE)
        second = time_calls(calls, WHOLE)
    measure_seconds = (time.perf_counter() - start) / len(configurations)
    measured = np.array([(first[i] + second[i]) / 2 for i in range(len(configurations))])
    retest = np.array([first[i] / second[i] - 1 for i in range(len(configurations))])
    predicted_array = np.array(predicted)
    error = predicted_array / measured - 1
    macs = [parameters.candidate(Candidate.key_of(w, p)).macs for w, p in configurations]
    start = time.perf_counter()
    space_entries = space_table(parameters, LatencyTable(this_device(runtime, threads)))
    space_seconds = time.perf_counter() - start
    return {
        "space": name,
        "runtime": runtime,
        "plans": len(configurations),
        "measured_low": float(measured.min()),
        "measured_high": float(measured.max()),
        "spearman": float(stats.spearmanr(predicted_array, measured).statistic),
        "median_error": float(np.median(np.abs(error))),
        "p90_error": float(np.quantile(np.abs(error), 0.9)),
        "bias": float(np.median(error)),
        "macs_spearman": float(stats.spearmanr(macs, measured).statistic),
        "retest_spearman": float(
            stats.spearmanr([first[i] for i in calls], [second[i] for i in calls]).statistic
        ),
        "retest_median": float(np.median(np.abs(retest))),
        "table_entries": entries,
        "table_seconds": table_seconds,
        "predict_us": predict_seconds * 1e6,
        "measure_s": measure_seconds,
        "space_entries": space_entries,
        "space_seconds": space_seconds,
    }


def markdown(rows: list[dict[str, Any]], command: str, elapsed: float, threads: int) -> str:
    device = this_device("torch", threads)
    lines = [
        f"`{command}` ({elapsed / 60:.1f} min) on {device.cpu}, {threads} thread(s), batch 1, "
        f"torch {torch.__version__}; {platform.python_version()}.",
        "",
        "| space | runtime | plans | measured (ms) | Spearman ρ | median error | 90th pct error | bias "
        "| MACs ρ | test-retest ρ / median diff | table: entries, s | predict µs | measure s/plan "
        "| space table: entries, s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['space']} | {r['runtime']} | {r['plans']} "
            f"| {r['measured_low']:.2f}–{r['measured_high']:.2f} "
            f"| {r['spearman']:.3f} | {r['median_error']:.1%} | {r['p90_error']:.1%} | {r['bias']:+.1%} "
            f"| {r['macs_spearman']:+.2f} | {r['retest_spearman']:.3f} / {r['retest_median']:.1%} "
            f"| {r['table_entries']}, {r['table_seconds']:.1f} | {r['predict_us']:.1f} "
            f"| {r['measure_s']:.2f} | {r['space_entries']}, {r['space_seconds']:.1f} |"
        )
    ratios = [r["measure_s"] * 1e6 / r["predict_us"] for r in rows]
    lines += [
        "",
        f"A prediction is {min(ratios):,.0f}–{max(ratios):,.0f}× faster than building and measuring the "
        "plan's network (seconds per plan in the measuring column: build, export for ONNX Runtime, "
        "and the two interleaved passes).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runtimes", default="torch,onnxruntime")
    args = parser.parse_args()
    start = time.perf_counter()
    rows = []
    for runtime in args.runtimes.split(","):
        for name, study in STUDIES.items():
            row = run_space(name, study, runtime, args.threads, args.plans)
            print(row, flush=True)
            rows.append(row)
    command = f"python benchmarks/latency.py --plans {args.plans} --threads {args.threads}"
    text = markdown(rows, command, time.perf_counter() - start, args.threads)
    print(text)
    write_section("latency", text)


if __name__ == "__main__":
    main()
