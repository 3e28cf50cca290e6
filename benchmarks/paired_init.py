"""Does initialising the plain network first make paired comparisons less noisy?  One run:

The default study's recipe (studies/default.yaml: MobileNetV1 α 0.28125, stem small, Fashion-MNIST,
2 epochs over 5,000 training images, 10,000 validation images held out of the training split)
trains four architectures on the same paired seeds under each of the two initialisations a study
can choose (``proxy.init``):

* ``sequential``: layers and modules drawn in network order (``create_network``): a module shifts
  the initialisation of every layer after it, so two candidates share no starting weights there;
* ``shared``: the plain network drawn first, then the modules: every layer two candidates share
  starts identical.

Arms: ``plain``; ``r79g4`` = replace@7,9 ULSAM g 4 (the main job's answer); ``r79g8`` (the same
with g 8: a g change); ``i12g8`` = insert@12 ULSAM g 8 (an insert).  For the comparisons a search
makes — plain − r79g4 (replace), plain − i12g8 (insert), r79g4 − r79g8 (g) — it reports, per
initialisation, the mean paired difference, the sd of the paired differences over seeds, the
correlation of the two arms' accuracies, and the ratio of the sds (shared / sequential) with a 95%
BCa bootstrap interval over seeds (the seeds resampled jointly for both initialisations: the plain
network starts identical under both, so its runs are the same and the two sds are not
independent, which an F interval would assume), then the seeds a confirmation needs to detect
0.5 points at 80% power under each.

Decision rule, fixed before the measurement completed: ``shared`` becomes the default if the sd
ratio's interval lies below 1 for at least one comparison and above 1 for none.

    python benchmarks/paired_init.py [--seeds 16] [--threads 1] [--cache FILE]

Every finished run is appended to ``--cache`` (JSON lines) and skipped when the script runs
again, so an interrupted measurement resumes; seeds run in order, every arm and initialisation
of a seed together, so a partial cache is balanced.  Writes its section of reports/benchmarks.md
once every run is in.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _report import write_section
from scipy import stats

from ulsam_nas.backbones import backbone_table
from ulsam_nas.search.config import load_study_config
from ulsam_nas.search.data import load_data
from ulsam_nas.search.noise import seeds_needed

ROOT = Path(__file__).resolve().parent.parent
ARMS = {
    "plain": "",
    "r79g4": "replace@7:ulsam:groups=4,replace@9:ulsam:groups=4",
    "r79g8": "replace@7:ulsam:groups=8,replace@9:ulsam:groups=8",
    "i12g8": "insert@12:ulsam:groups=8",
}
COMPARISONS = {"replace": ("plain", "r79g4"), "insert": ("plain", "i12g8"), "g 4 → 8": ("r79g4", "r79g8")}
INITS = ("sequential", "shared")
WIDTH = 0.28125


def run_job(init: str, arm: str, seed: int, settings: Any, data: Any) -> dict[str, Any]:
    from ulsam_nas.search.train import proxy_train

    table = backbone_table("mobilenet_v1", WIDTH, 32, 10, 1, "small")
    start = time.perf_counter()
    result = proxy_train(lambda: table.build(ARMS[arm], plain_first=init == "shared"), data, settings, seed)
    return {
        "init": init,
        "arm": arm,
        "seed": seed,
        "accuracy": result.accuracy,
        "seconds": time.perf_counter() - start,
    }


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    found = {(r["init"], r["arm"], r["seed"]): r["accuracy"] for r in rows}
    seeds = sorted({r["seed"] for r in rows if all((i, a, r["seed"]) in found for i in INITS for a in ARMS)})
    summary: dict[str, Any] = {"seeds": len(seeds), "comparisons": {}}
    for name, (first, second) in COMPARISONS.items():
        entry: dict[str, Any] = {}
        for init in INITS:
            a = [found[(init, first, s)] * 100 for s in seeds]
            b = [found[(init, second, s)] * 100 for s in seeds]
            differences = [x - y for x, y in zip(a, b, strict=True)]
            sd = statistics.stdev(differences)
            entry[init] = {
                "mean": statistics.fmean(differences),
                "sd": sd,
                "correlation": float(stats.pearsonr(a, b).statistic),
                "seeds_for_0.5": seeds_needed(sd / 100, 0.005),
            }
        entry["sd_ratio"] = sd_ratio(found, seeds, first, second)
        summary["comparisons"][name] = entry
    summary["seconds_per_run"] = statistics.median(r["seconds"] for r in rows)
    return summary


def sd_ratio(
    found: dict[tuple[str, str, int], float], seeds: list[int], first: str, second: str
) -> dict[str, float]:
    """sd of the paired difference under ``shared`` over that under ``sequential``, with a 95%
    BCa interval from resampling seeds (both initialisations' differences of a seed together)."""
    differences = {
        init: np.array([(found[(init, first, s)] - found[(init, second, s)]) * 100 for s in seeds])
        for init in INITS
    }

    def ratio(shared: np.ndarray, sequential: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.std(shared, ddof=1, axis=axis) / np.std(sequential, ddof=1, axis=axis)

    interval = stats.bootstrap(
        (differences["shared"], differences["sequential"]),
        ratio,
        paired=True,
        vectorized=True,
        n_resamples=10_000,
        method="BCa",
        random_state=np.random.default_rng(0),
    ).confidence_interval
    value = float(ratio(differences["shared"], differences["sequential"]))
    return {"value": value, "ci_low": float(interval.low), "ci_high": float(interval.high)}


def markdown(summary: dict[str, Any], command: str) -> str:
    lines = [
        f"`{command}` — {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{summary['seeds']} paired seeds per arm and initialisation, median "
        f"{summary['seconds_per_run']:.0f} s per run.",
        "",
        "| comparison | init | mean difference (points) | sd of the paired difference | correlation "
        "| seeds to detect 0.5 points |",
        "|---|---|---|---|---|---|",
    ]
    for name, entry in summary["comparisons"].items():
        for init in INITS:
            e = entry[init]
            lines.append(
                f"| {name} | {init} | {e['mean']:+.2f} | {e['sd']:.2f} | {e['correlation']:+.2f} "
                f"| {e['seeds_for_0.5']} |"
            )
        r = entry["sd_ratio"]
        lines.append(
            f"| {name} | sd ratio shared / sequential | | {r['value']:.2f} [{r['ci_low']:.2f}, "
            f"{r['ci_high']:.2f}] | | |"
        )
    lines += ["", decision(summary)]
    return "\n".join(lines) + "\n"


def decision(summary: dict[str, Any]) -> str:
    """The rule fixed before the measurement: shared if some sd ratio's interval lies below 1 and
    none above."""
    ratios = {name: entry["sd_ratio"] for name, entry in summary["comparisons"].items()}
    below = [name for name, r in ratios.items() if r["ci_high"] < 1]
    above = [name for name, r in ratios.items() if r["ci_low"] > 1]
    if below and not above:
        lower = ", ".join(below)
        return f"Decision: `shared` (its sd is lower with 95% confidence for {lower}; higher for none)."
    if above:
        return (
            f"Decision: `sequential` (`shared` has a higher sd with 95% confidence for {', '.join(above)})."
        )
    return "Decision: `sequential` stays (no sd ratio's interval excludes 1)."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache", default=str(ROOT / "reports" / "paired_init.jsonl"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cache = Path(args.cache)
    rows = [json.loads(line) for line in cache.read_text().splitlines()] if cache.is_file() else []
    done = {(r["init"], r["arm"], r["seed"]) for r in rows}
    config = load_study_config(ROOT / "studies" / "default.yaml")
    settings = config.proxy.train_settings()
    data = load_data("fashion-mnist", config.proxy.train_images, config.proxy.val_images, 32, 0)
    for seed in range(args.seeds):
        for init in INITS:
            for arm in ARMS:
                if (init, arm, seed) in done:
                    continue
                row = run_job(init, arm, seed, settings, data)
                rows.append(row)
                with cache.open("a") as handle:
                    handle.write(json.dumps(row) + "\n")
                accuracy, seconds = row["accuracy"] * 100, row["seconds"]
                print(f"seed {seed} {init} {arm}: {accuracy:.2f}% in {seconds:.0f} s", flush=True)
    summary = summarize(rows)
    command = f"python benchmarks/paired_init.py --seeds {args.seeds} --threads {args.threads}"
    text = markdown(summary, command)
    print(text)
    write_section("paired_init", text)


if __name__ == "__main__":
    main()
