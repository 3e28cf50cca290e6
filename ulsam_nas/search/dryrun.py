"""What a study will do, said before anything trains (``ulsam-nas search --dry-run``): how large
the space is and how much of it fits the budget, per width; how the images split; how long each
stage should take; and the smallest difference the final stage is expected to detect.  It needs
no data set installed and answers in seconds: spaces up to ``EXACT_LIMIT`` parameter
combinations are counted exactly with the batch cost evaluator, larger ones estimated from
uniform samples, and the time comes from a few timed training steps on random inputs."""

from __future__ import annotations

import math
import statistics
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from ulsam_nas.search.latency import attach_latency
from ulsam_nas.search.noise import detectable_difference
from ulsam_nas.search.problem import Problem
from ulsam_nas.search.space import Candidate
from ulsam_nas.search.train import flushing_denormals, in_memory_format

if TYPE_CHECKING:
    import optuna

EXACT_LIMIT = 1_000_000  # configurations counted one by one; larger spaces are sampled
SAMPLES = 20_000
TIMED_STEPS = 5
WARM_UP = 2  # steps run before the timed ones (the first steps build the kernels)


def dry_run(problem: Problem, timed: bool = True) -> dict[str, Any]:
    network = problem.parameters.network
    # A latency budget counts too: an existing study predicts from the table it stored; before
    # the study exists its table is measured now (and not stored).
    stored = _existing_study(problem)
    attach_latency(problem, stored)
    latency = problem.parameters.latency
    counts = count_feasible(problem)
    timing = time_candidate(problem, counts["median_feasible"]) if timed else None
    stages = stage_plan(problem, timing)
    minutes = sum(s["seconds"] for s in stages) / 60 if timing else None
    return {
        "space": problem.config.space,
        "parameters": sorted(problem.parameters.distributions),
        "combinations": problem.parameters.product_size(),
        "configurations": counts["configurations"],
        "feasible": counts["feasible"],
        "feasible_fraction": counts["feasible"] / counts["configurations"],
        "feasible_by_width": counts["feasible_by_width"],
        "width_labels": {f"{w:g}": network.width_label(w) for w in problem.space.width_mults},
        "counted": counts["counted"],
        "feasible_interval": counts.get("interval"),
        "feasible_mmacs": counts["feasible_mmacs"],
        "budget_mmacs": problem.config.budget.mmacs,
        "budget_mparams": problem.config.budget.mparams,
        "budget_latency_ms": problem.config.budget.latency_ms,
        "latency_device": latency.device.text() if latency is not None else None,
        "latency_table": None if latency is None else ("stored" if stored is not None else "measured now"),
        "reference": problem.parameters.widest_plain,
        "data": problem.shape.split,
        "data_installed": problem.shape.installed,
        "trials": problem.config.trials,
        "stages": stages,
        "seconds_per_trial": timing["first_rung_seconds"] if timing else None,
        "timing": timing,
        "estimated_minutes": minutes,
        "expected_detectable_difference": expected_detectable(problem),
    }


def count_feasible(problem: Problem) -> dict[str, Any]:
    """Configurations (buildable, at most max_modules modules) and those inside the budget, per
    width: exact by enumeration up to EXACT_LIMIT combinations, else from uniform samples."""
    parameters = problem.parameters
    widths = parameters.space.width_mults
    counts = parameters.configuration_counts()
    exact = sum(counts.values()) <= EXACT_LIMIT
    chunks = parameters.enumerate() if exact else [parameters.sample(np.random.default_rng(0), SAMPLES)]
    found = np.zeros(len(widths), dtype=np.int64)
    seen = np.zeros(len(widths), dtype=np.int64)
    macs: list[np.ndarray] = []
    median_row: tuple[int, list[int]] | None = None
    rows: list[tuple[int, np.ndarray]] = []
    for width_index, choices in chunks:
        cost, inside = parameters.costed(width_index, choices)
        found += np.bincount(width_index[inside], minlength=len(widths))
        seen += np.bincount(width_index[cost.valid], minlength=len(widths))
        macs.append(cost.macs[inside])
        if inside.any():
            order = np.argsort(cost.macs[inside])
            middle = order[len(order) // 2]
            rows.append(
                (
                    int(cost.macs[inside][middle]),
                    np.array([width_index[inside][middle], *choices[inside][middle]]),
                )
            )
    every = np.concatenate(macs) if macs else np.array([], dtype=np.int64)
    if rows:
        rows.sort(key=lambda r: r[0])
        chosen = rows[len(rows) // 2][1]
        median_row = (int(chosen[0]), [int(c) for c in chosen[1:]])
    result: dict[str, Any] = {"configurations": sum(counts.values())}
    if exact:
        by_width = {f"{w:g}": int(n) for w, n in zip(widths, found, strict=True)}
        result |= {"feasible": int(found.sum()), "counted": "exact"}
    else:
        share = np.divide(found, seen, out=np.zeros(len(widths)), where=seen > 0)
        by_width = {f"{w:g}": round(float(share[i] * counts[w])) for i, w in enumerate(widths)}
        fraction = found.sum() / max(1, seen.sum())
        low, high = _wilson(int(found.sum()), int(seen.sum()))
        total = result["configurations"]
        result |= {
            "feasible": round(float(fraction * total)),
            "counted": f"estimated from {int(seen.sum()):,} uniform samples",
            "interval": [round(low * total), round(high * total)],
        }
    result["feasible_by_width"] = by_width
    result["feasible_mmacs"] = (
        [float(every.min()) / 1e6, float(np.median(every)) / 1e6, float(every.max()) / 1e6]
        if every.size
        else None
    )
    result["median_feasible"] = None
    if median_row is not None:
        width, plan = problem.parameters.configuration(*median_row)
        result["median_feasible"] = problem.parameters.candidate(Candidate.key_of(width, plan))
    return result


def _wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def time_candidate(problem: Problem, candidate: Candidate | None) -> dict[str, Any] | None:
    """Seconds per training image and per evaluated image of a median-cost feasible candidate,
    from a few timed steps on random inputs (the data set is not needed), and what one
    candidate costs at the first rung."""
    if candidate is None:
        return None
    settings = problem.config.proxy.train_settings()
    network = problem.network
    shape = (settings.batch_size, network["in_channels"], network["resolution"], network["resolution"])
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(shape, generator=generator)
    labels = torch.randint(0, network["num_classes"], (settings.batch_size,), generator=generator)
    model, inputs = in_memory_format(problem.build(candidate), inputs, settings.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    train_times, eval_times = [], []
    with flushing_denormals():
        model.train()
        for step in range(WARM_UP + TIMED_STEPS):
            start = time.perf_counter()
            loss = F.cross_entropy(model(inputs), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step >= WARM_UP:
                train_times.append(time.perf_counter() - start)
        model.eval()
        with torch.inference_mode():
            for step in range(WARM_UP + TIMED_STEPS):
                start = time.perf_counter()
                model(inputs)
                if step >= WARM_UP:
                    eval_times.append(time.perf_counter() - start)
    per_train = statistics.median(train_times) / settings.batch_size
    per_eval = statistics.median(eval_times) / settings.batch_size
    timing = {
        "candidate": candidate.key,
        "timed_steps": TIMED_STEPS,
        "seconds_per_training_image": per_train,
        "seconds_per_evaluated_image": per_eval,
    }
    timing["first_rung_seconds"] = candidate_seconds(problem, timing, 0, test=False)
    return timing


def candidate_seconds(problem: Problem, timing: dict[str, Any], rung: int, test: bool) -> float:
    """Estimated seconds of one seed at ``rung``: training steps, precise BatchNorm, validation
    (and the test part for the confirmation)."""
    proxy = problem.config.proxy
    fidelity = problem.config.ladder.fidelities[rung]
    split = problem.shape.split
    images = fidelity.images if fidelity.images is not None else int(split["train_images"] or 0)
    steps = (images // proxy.batch_size) * proxy.batch_size * fidelity.epochs
    evaluated = int(split["validation_images"] or 0) + min(proxy.precise_bn, images)
    if test:
        evaluated += int(split["test_images"] or 0)
    return steps * timing["seconds_per_training_image"] + evaluated * timing["seconds_per_evaluated_image"]


def stage_plan(problem: Problem, timing: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Each stage's evaluations and seed runs, and their estimated seconds (the most a stage can
    ask for: the confirmation at its maximum seed count)."""
    ladder = problem.config.ladder
    trials = problem.config.trials
    reference = 1 if problem.parameters.widest_plain is not None else 0
    rows: list[dict[str, Any]] = []
    promoted = trials
    for rung, name in enumerate(ladder.stage_names()):
        if name == "search":
            runs = trials * ladder.seed_counts[0] + reference * (
                ladder.reference_seed_count(0) - ladder.seed_counts[0]
            )
            rows.append({"stage": name, "candidates": trials, "seed_runs": runs, "rung": 0})
        elif name == "confirm":
            seeds = ladder.confirm_max_seeds or ladder.confirm_seeds
            count = (ladder.top_k or 0) + reference
            rows.append({"stage": name, "candidates": count, "seed_runs": count * seeds, "rung": ladder.last})
        else:
            promoted = max(ladder.top_k or 1, math.ceil(promoted / ladder.reduction_factor))
            runs = promoted * ladder.seed_counts[rung] + reference * ladder.reference_seed_count(rung)
            rows.append({"stage": name, "candidates": promoted + reference, "seed_runs": runs, "rung": rung})
    for row in rows:
        row["seconds"] = (
            row["seed_runs"] * candidate_seconds(problem, timing, row["rung"], row["stage"] == "confirm")
            if timing
            else None
        )
    return rows


def expected_detectable(problem: Problem) -> dict[str, Any] | None:
    """The smallest difference the final stage should detect at 80% power, from the paired-
    difference sd the study file expects (measured), at the confirmation's seed count."""
    ladder = problem.config.ladder
    if ladder.top_k is None or ladder.expected_sd is None:
        return None
    seeds = ladder.confirm_seeds
    at_start = detectable_difference(ladder.expected_sd, seeds)
    return {
        "expected_sd_points": ladder.expected_sd * 100,
        "seeds": seeds,
        "points": at_start * 100,
        "target_points": None if ladder.confirm_target is None else ladder.confirm_target * 100,
        "max_seeds": ladder.confirm_max_seeds,
    }


def _existing_study(problem: Problem) -> optuna.Study | None:
    """The study this dry run describes, if it already exists and keeps a latency table."""
    config = problem.config
    if not config.needs_latency:
        return None
    from ulsam_nas.errors import InvalidInput
    from ulsam_nas.search.storage import open_study

    try:
        return open_study(config.storage_url, config.name)
    except InvalidInput:  # no storage or no such study yet: the table is measured now
        return None


def dry_run_text(plan: dict[str, Any]) -> str:
    """The dry run for people."""
    labels = plan.get("width_labels", {})
    by_width = ", ".join(
        f"{labels.get(w, f'α {w}')}: {n:,}" for w, n in plan["feasible_by_width"].items() if n
    )
    interval = (
        f" (95% interval {plan['feasible_interval'][0]:,}–{plan['feasible_interval'][1]:,})"
        if plan["feasible_interval"]
        else ""
    )
    mmacs = plan["feasible_mmacs"]
    lines = [
        f"{plan['configurations']:,} configurations ({plan['combinations']:,} parameter combinations), "
        f"{plan['feasible']:,} within the budget{interval}, {plan['counted']} "
        f"({plan['feasible_fraction']:.1%}"
        + (f"; {mmacs[0]:.2f}–{mmacs[2]:.2f} MMACs" if mmacs else "")
        + ")",
        f"feasible by width: {by_width or 'none'}",
        f"reference (widest plain network within the budget): {plan['reference'] or 'none'}",
        *(
            [
                f"latency predicted on {plan['latency_device']} "
                + (
                    "(the study's stored table)"
                    if plan.get("latency_table") == "stored"
                    else "(its table measured now; a study measures it once)"
                )
            ]
            if plan.get("latency_device")
            else []
        ),
        "data: " + _split_text(plan["data"]) + ("" if plan["data_installed"] else " (not installed yet)"),
    ]
    for row in plan["stages"]:
        time_text = f", about {row['seconds'] / 60:.1f} min" if row["seconds"] is not None else ""
        lines.append(
            f"  {row['stage']}: {row['candidates']} candidates, {row['seed_runs']} seed runs{time_text}"
        )
    if plan["estimated_minutes"] is not None:
        lines.append(
            f"about {plan['seconds_per_trial']:.0f} s a first-rung candidate, "
            f"{plan['estimated_minutes']:.0f} min in all (from {plan['timing']['timed_steps']} timed steps "
            "here; machine load changes it)"
        )
    expected = plan["expected_detectable_difference"]
    if expected:
        target = (
            f"; seeds are added up to {expected['max_seeds']} until it is "
            f"{expected['target_points']:.2f} points or less"
            if expected["target_points"]
            else ""
        )
        lines.append(
            f"final stage: {expected['seeds']} paired seeds detect about {expected['points']:.2f} points "
            f"at 80% power (expected paired-difference sd {expected['expected_sd_points']:.2f} points, "
            f"as measured){target}"
        )
    return "\n".join(lines)


def _split_text(split: dict[str, Any]) -> str:
    test = (
        f", {split['test_images']:,} test images ({split['test_from']})"
        if split["test_images"]
        else ", no test part"
    )
    return (
        f"{split['train_images']:,} training and {split['validation_images']:,} validation images "
        f"(from the {split['validation_from']}){test}"
    )
