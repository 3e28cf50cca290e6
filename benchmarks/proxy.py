"""Which proxy-training recipe gives the least seed noise per CPU-second?  One run:

For each recipe, three architectures (MobileNetV1 α 0.25, stem small, on Fashion-MNIST: the
plain network, ULSAM replacing layer 9 with g = 4, ULSAM inserted after layer 12 with g = 8)
are trained with the same paired seeds, on 5,000 training images (10,000 image-steps, the
first rung's budget, unless a recipe says otherwise), and scored on 10,000 validation
images held out of the training split.  Per recipe:

* seconds per candidate (the whole run: training, precise BatchNorm, evaluation), as a ratio to
  the previous default recipe's ("shipped" below) in the same run (runs are interleaved, so
  machine load hits all alike);
* seed sd (pooled within architecture), its validation-sampling part (from how often two seeds'
  models disagree on an image: √(q / 2N)), and the paired-difference sd (the sd over seeds of
  one architecture's accuracy minus another's, pooled over the three pairs), in points;
* sd² × seconds against that recipe: the CPU time a given precision costs.

Also images/s of one 2-thread training against two 1-thread trainings side by side.

    python benchmarks/proxy.py [--screen-seeds 4] [--finalists A,B] [--seeds 12] [--workers 2] [--cache FILE]

Every recipe is screened with ``--screen-seeds`` paired seeds; the previous default and the
``--finalists`` get ``--seeds``.  Jobs run in ``--workers`` processes with ``cores // workers``
threads each; ``--cache`` keeps finished runs so an interrupted run resumes.  Writes its section
of reports/benchmarks.md.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import math
import multiprocessing
import os
import statistics
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from _report import write_section

from ulsam_nas import create_network
from ulsam_nas.search.data import ImageData, load_data
from ulsam_nas.search.noise import validation_sampling_sd
from ulsam_nas.search.train import TrainSettings, proxy_train

ARMS = {
    "plain": "",
    "r9g4": "replace@9:ulsam:groups=4",
    "i12g8": "insert@12:ulsam:groups=8",
}
WIDTH = 0.25
VALIDATION = 10_000
SHIPPED = "shipped"  # the recipe the tool shipped before this measurement
CHOSEN = "b32 lr0.05+pbn+ls"  # the recipe it ships now (studies/default.yaml)


@dataclass(frozen=True)
class Recipe:
    settings: TrainSettings
    images: int = 5000
    note: str = ""


# Every recipe but the shipped one runs in NHWC memory format (``channels_last``): the same
# network, about 1.5× the training throughput on this CPU (the throughput line says how much).
NHWC = TrainSettings(channels_last=True)
WARM = replace(NHWC, lr=0.2, warmup=0.15, nesterov=True, precise_bn=2048)
RECIPES: dict[str, Recipe] = {
    SHIPPED: Recipe(TrainSettings(), note="lr 0.05, batch 128, cosine, no warm-up, NCHW"),
    "shipped nhwc": Recipe(NHWC, note="the same in NHWC"),
    "shipped+pbn": Recipe(replace(NHWC, precise_bn=2048), note="+ precise BN over 2,048 images"),
    "warm lr0.2+pbn": Recipe(WARM, note="peak lr 0.2, 15% warm-up, Nesterov, precise BN"),
    "warm lr0.4+pbn": Recipe(replace(WARM, lr=0.4), note="peak lr 0.4"),
    "b64 lr0.1+pbn": Recipe(replace(WARM, batch_size=64, lr=0.1), note="batch 64, peak lr 0.1"),
    "b64 lr0.2+pbn": Recipe(replace(WARM, batch_size=64, lr=0.2), note="batch 64, peak lr 0.2"),
    "b32 lr0.05+pbn": Recipe(replace(WARM, batch_size=32, lr=0.05), note="batch 32, peak lr 0.05"),
    "warm lr0.2+pbn+ls": Recipe(replace(WARM, label_smoothing=0.1), note="+ label smoothing 0.1"),
    "b32 lr0.05+pbn+ls": Recipe(
        replace(WARM, batch_size=32, lr=0.05, label_smoothing=0.1),
        note="batch 32, peak lr 0.05, label smoothing 0.1",
    ),
    "b64 lr0.1+pbn+ls": Recipe(
        replace(WARM, batch_size=64, lr=0.1, label_smoothing=0.1),
        note="batch 64, peak lr 0.1, label smoothing 0.1",
    ),
    "warm lr0.2+pbn+ema": Recipe(replace(WARM, ema=0.9), note="+ weight average, decay 0.9"),
    "1 epoch × 10k+pbn": Recipe(replace(WARM, epochs=1), images=10_000, note="1 epoch over 10,000 images"),
    "adamw+pbn": Recipe(
        replace(WARM, optimizer="adamw", lr=0.003, weight_decay=0.05, nesterov=False),
        note="AdamW, peak lr 0.003, weight decay 0.05",
    ),
}

_DATA: dict[int, ImageData] = {}


def _data(images: int) -> ImageData:
    if images not in _DATA:
        _DATA[images] = load_data("fashion-mnist", images, VALIDATION, 32, 0)
    return _DATA[images]


def _init(threads: int) -> None:
    torch.set_num_threads(threads)


def run_job(job: tuple[str, str, int]) -> dict[str, Any]:
    recipe_name, arm, seed = job
    recipe = RECIPES[recipe_name]
    data = _data(recipe.images)

    def build() -> torch.nn.Module:
        return create_network("mobilenet_v1", WIDTH, ARMS[arm], 32, 10, 1, "small")

    start = time.perf_counter()
    result = proxy_train(build, data, recipe.settings, seed)
    return {
        "recipe": recipe_name,
        "arm": arm,
        "seed": seed,
        "accuracy": result.accuracy,
        "seconds": time.perf_counter() - start,
        "correct": base64.b64encode(result.validation_correct).decode(),
    }


def _throughput() -> dict[str, float]:
    """Training images/s of the ULSAM arm (1 epoch, shipped recipe): one 2-thread training in NCHW
    and in NHWC, then two 1-thread NHWC trainings side by side."""
    found = {}
    torch.set_num_threads(2)
    for name, settings in (("NCHW", TrainSettings(epochs=1)), ("NHWC", replace(NHWC, epochs=1))):
        found[f"one 2-thread training, {name}"] = _throughput_job(settings)
    context = multiprocessing.get_context("spawn")
    with context.Pool(2, initializer=_init, initargs=(1,)) as pool:
        found["two 1-thread trainings side by side, NHWC"] = sum(
            pool.map(_throughput_job, [replace(NHWC, epochs=1)] * 2)
        )
    return found


def _throughput_job(settings: TrainSettings) -> float:
    result = proxy_train(
        lambda: create_network("mobilenet_v1", WIDTH, ARMS["r9g4"], 32, 10, 1, "small"),
        _data(5000),
        settings,
        0,
    )
    return result.images_per_second


@dataclass
class Summary:
    recipe: str
    seconds: float
    accuracy: dict[str, tuple[float, float]]  # arm -> (mean, sd)
    seed_sd: float
    sampling_sd: float
    paired_sd: float
    pairs: dict[str, tuple[float, float]] = field(default_factory=dict)  # "a − b" -> (mean, sd)
    seeds: int = 0


def summarize(recipe: str, rows: list[dict[str, Any]]) -> Summary:
    by_arm: dict[str, dict[int, dict[str, Any]]] = {}
    for row in rows:
        by_arm.setdefault(row["arm"], {})[row["seed"]] = row
    seeds = sorted(set.intersection(*(set(v) for v in by_arm.values())))
    accuracy = {
        arm: (
            statistics.fmean(v[s]["accuracy"] for s in seeds),
            statistics.stdev(v[s]["accuracy"] for s in seeds),
        )
        for arm, v in by_arm.items()
    }
    within = [sum((v[s]["accuracy"] - accuracy[arm][0]) ** 2 for s in seeds) for arm, v in by_arm.items()]
    seed_sd = math.sqrt(sum(within) / (len(by_arm) * (len(seeds) - 1)))
    sampling = [
        validation_sampling_sd(
            base64.b64decode(v[a]["correct"]), base64.b64decode(v[b]["correct"]), VALIDATION
        )
        for v in by_arm.values()
        for a, b in itertools.combinations(seeds, 2)
    ]
    pairs = {}
    squares, dof = 0.0, 0
    for first, second in itertools.combinations(sorted(by_arm), 2):
        differences = [by_arm[first][s]["accuracy"] - by_arm[second][s]["accuracy"] for s in seeds]
        pairs[f"{first} − {second}"] = (statistics.fmean(differences), statistics.stdev(differences))
        mean = statistics.fmean(differences)
        squares += sum((d - mean) ** 2 for d in differences)
        dof += len(differences) - 1
    return Summary(
        recipe,
        statistics.median(row["seconds"] for row in rows),
        accuracy,
        seed_sd,
        math.sqrt(statistics.fmean(s**2 for s in sampling)),
        math.sqrt(squares / dof),
        pairs,
        len(seeds),
    )


def report(summaries: list[Summary], throughput: dict[str, float], workers: int, elapsed: float) -> str:
    shipped = next(s for s in summaries if s.recipe == SHIPPED)
    counts = sorted({s.seeds for s in summaries})
    seeds = " or ".join(str(c) for c in counts)
    lines = [
        "## The proxy's recipe (`python benchmarks/proxy.py`)",
        "",
        f"Fashion-MNIST, MobileNetV1 α {WIDTH:g} (stem small), three architectures (plain; ULSAM "
        "replacing layer 9, g = 4; ULSAM inserted after layer 12, g = 8), "
        f"{seeds} paired seeds per architecture and recipe, scored on {VALIDATION:,} validation images "
        "held out of the training split; 5,000 training images × 2 epochs unless the recipe says "
        f"otherwise. {workers} worker processes × {max(1, (os.cpu_count() or 1) // workers)} thread(s), "
        f"runs interleaved; {elapsed / 60:.0f} min of runs on the workers in all (over the runs that "
        "filled the cache). Accuracies in %, sd in points; "
        "'sampling' is the validation-sampling part of the seed sd, √(q/2N) from the share q of "
        "images two seeds' models disagree on; sd² × s is (paired-difference sd)² × seconds, "
        "relative to the recipe the tool shipped before ('shipped'; the CPU time a given precision "
        "costs). The recipe it ships now is marked ←.",
        "",
        "| recipe | s / candidate (median) | × shipped | plain | r9g4 | i12g8 | seed sd | sampling | "
        "paired-diff sd | sd² × s vs shipped |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    base = shipped.paired_sd**2 * shipped.seconds
    for s in summaries:
        arms = " | ".join(f"{s.accuracy[a][0] * 100:.2f} ± {s.accuracy[a][1] * 100:.2f}" for a in ARMS)
        lines.append(
            f"| {s.recipe}{' ←' if s.recipe == CHOSEN else ''} ({RECIPES[s.recipe].note}; {s.seeds} seeds) | "
            f"{s.seconds:.1f} | "
            f"{s.seconds / shipped.seconds:.2f} | "
            f"{arms} | {s.seed_sd * 100:.2f} | {s.sampling_sd * 100:.2f} | {s.paired_sd * 100:.2f} | "
            f"{s.paired_sd**2 * s.seconds / base:.3f} |"
        )
    lines += ["", "Paired differences (mean ± sd over seeds, points):", ""]
    lines += [
        "| recipe | " + " | ".join(summaries[0].pairs) + " |",
        "|---" * (1 + len(summaries[0].pairs)) + "|",
    ]
    for s in summaries:
        cells = " | ".join(f"{m * 100:+.2f} ± {sd * 100:.2f}" for m, sd in s.pairs.values())
        lines.append(f"| {s.recipe} | {cells} |")
    if throughput:
        nchw, nhwc, two = throughput.values()
        lines += [
            "",
            f"Training throughput (ULSAM arm, the previous recipe, 1 epoch, alone on the machine): one "
            f"2-thread training {nchw:.0f} images/s in NCHW, {nhwc:.0f} in NHWC ({nhwc / nchw:.2f}×); two "
            f"1-thread NHWC trainings side by side {two:.0f} images/s in all ({two / nhwc:.2f}× one 2-thread "
            "NHWC training).",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screen-seeds", type=int, default=4)
    parser.add_argument(
        "--seeds", type=int, default=12, help="seeds for the shipped recipe and the finalists"
    )
    parser.add_argument("--finalists", default="", help="comma-separated recipe names")
    parser.add_argument("--recipes", default="all", help="comma-separated names, or all")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache", type=Path, help="a JSON file of finished runs (resumes)")
    parser.add_argument("--no-throughput", action="store_true")
    parser.add_argument("--dry", action="store_true", help="print the recipes and stop")
    args = parser.parse_args()
    names = list(RECIPES) if args.recipes == "all" else args.recipes.split(",")
    if SHIPPED not in names:
        names.insert(0, SHIPPED)
    if args.dry:
        for name in names:
            print(name, asdict(RECIPES[name].settings), RECIPES[name].images)
        return
    start = time.perf_counter()
    throughput = {} if args.no_throughput else _throughput()
    done: dict[str, dict[str, Any]] = {}
    if args.cache and args.cache.exists():
        done = {f"{r['recipe']}|{r['arm']}|{r['seed']}": r for r in json.loads(args.cache.read_text())}
    finalists = {SHIPPED, *filter(None, args.finalists.split(","))}
    unknown = finalists - set(RECIPES)
    if unknown:
        parser.error(f"unknown recipe {sorted(unknown)[0]!r}; allowed: {', '.join(RECIPES)}")
    jobs = [
        (name, arm, seed)
        for seed in range(max(args.seeds, args.screen_seeds))
        for name in names
        for arm in ARMS
        if seed < (args.seeds if name in finalists else args.screen_seeds)
        and f"{name}|{arm}|{seed}" not in done
    ]
    threads = max(1, (os.cpu_count() or 1) // args.workers)
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.workers, initializer=_init, initargs=(threads,)) as pool:
        for i, row in enumerate(pool.imap(run_job, jobs), 1):
            done[f"{row['recipe']}|{row['arm']}|{row['seed']}"] = row
            print(
                f"{i}/{len(jobs)} {row['recipe']} {row['arm']} seed {row['seed']}: "
                f"{row['accuracy'] * 100:.2f} % in {row['seconds']:.1f} s",
                flush=True,
            )
            if args.cache:
                args.cache.write_text(json.dumps(list(done.values())))
    rows = [
        r
        for r in done.values()
        if r["recipe"] in names
        and r["seed"] < (args.seeds if r["recipe"] in finalists else args.screen_seeds)
    ]
    summaries = [summarize(name, [r for r in rows if r["recipe"] == name]) for name in names]
    busy = sum(r["seconds"] for r in rows) / args.workers
    text = report(summaries, throughput, args.workers, busy + time.perf_counter() - start)
    print(text)
    write_section("proxy", text)


if __name__ == "__main__":
    main()
