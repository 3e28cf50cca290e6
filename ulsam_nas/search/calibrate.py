"""Does the proxy rank architectures the way a higher fidelity does?  (``ulsam-nas calibrate``)

N architectures are sampled across the study's feasible set, stratified over width and over the
kind of placement (plain, insert, replace, both), and each is trained with S paired seeds at the
proxy fidelity (the study's first rung) and at a higher one (``--high-epochs``/``--high-images``;
by default the schedule's last rung, or twice the proxy's epochs).  The two fidelities may have
their own seed counts (``--proxy-seeds``, ``--seeds``): the proxy is cheap, and more of its seeds
bring its mean closer to what one candidate's proxy score can say.  The evaluations
are trials of a companion study ``<name>-calibration`` in the same storage (so a rerun resumes
and no seed is trained twice), run by the search's own evaluation code.

Reported (shared/design/search.md §4): Kendall τ-b and Spearman ρ between the per-architecture
mean accuracies at the two fidelities, with 95% percentile-bootstrap intervals over
architectures; the same within each width; the baselines any proxy has to beat (ranking by MACs
alone, by params alone); the noise ceiling (τ between two seeds at the higher fidelity); top-k
overlap and the regret of the proxy's pick; a zero-cost proxy's τ (gradient norm at
initialization); the seeds needed to resolve 0.5 points at each fidelity; and the noise
decomposition at each fidelity — the seed sd (pooled within architecture), its validation-sampling
part (from how often two seeds' models disagree on an image) and the paired-difference sd
(architecture against architecture over common seeds) — so a user can measure for their data
what benchmarks/proxy.py measured for Fashion-MNIST.
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats

from ulsam_nas.errors import InvalidInput
from ulsam_nas.networks.plan import plan_facts
from ulsam_nas.search.config import StudyConfig
from ulsam_nas.search.noise import pooled_sd, seeds_needed, validation_sampling_sd
from ulsam_nas.search.problem import Problem, prepare
from ulsam_nas.search.records import collect_correct, collect_results
from ulsam_nas.search.schedule import Confirm, Ladder, Request, Rung, ScheduleConfig
from ulsam_nas.search.space import Candidate
from ulsam_nas.search.train import flushing_denormals
from ulsam_nas.search.worker import Search

BOOTSTRAP_RESAMPLES = 2000
RESOLVE_POINTS = 0.5


def placement_kind(plan: str) -> str:
    return plan_facts(plan).kind


def stratified_sample(candidates: Sequence[Candidate], count: int, seed: int) -> list[Candidate]:
    """``count`` candidates spread over (width, placement kind) strata: round-robin over the
    strata in a seeded order, a seeded random member each time; every plain backbone first."""
    rng = random.Random(seed)
    strata: dict[tuple[float, str], list[Candidate]] = {}
    for candidate in candidates:
        strata.setdefault((candidate.width_mult, placement_kind(candidate.plan)), []).append(candidate)
    for members in strata.values():
        rng.shuffle(members)
    order = sorted(strata, key=lambda s: (s[1] != "plain", s))
    chosen: list[Candidate] = []
    while len(chosen) < min(count, len(candidates)):
        for stratum in order:
            if strata[stratum] and len(chosen) < count:
                chosen.append(strata[stratum].pop())
    return chosen


def kendall(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall τ-b (None when it is undefined: fewer than 3 points or a constant ranking)."""
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    return float(stats.kendalltau(x, y, variant="b").statistic)


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    return float(stats.spearmanr(x, y).statistic)


def with_interval(
    statistic: Callable[[Sequence[float], Sequence[float]], float | None],
    x: Sequence[float],
    y: Sequence[float],
    seed: int,
) -> dict[str, float | None]:
    """The statistic and a 95% percentile-bootstrap interval over the paired points."""
    value = statistic(x, y)
    low = high = None
    if value is not None and len(x) >= 4:

        def resampled(a: np.ndarray, b: np.ndarray) -> float:
            found = statistic(list(a), list(b))
            return math.nan if found is None else found

        with warnings.catch_warnings():
            # Resamples with a constant ranking have no τ; the interval is then reported as null.
            warnings.simplefilter("ignore", stats.DegenerateDataWarning)
            result = stats.bootstrap(
                (np.asarray(x), np.asarray(y)),
                resampled,
                paired=True,
                vectorized=False,
                n_resamples=BOOTSTRAP_RESAMPLES,
                method="percentile",
                random_state=np.random.default_rng(seed),
            )
        if math.isfinite(result.confidence_interval.low) and math.isfinite(result.confidence_interval.high):
            low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    return {"value": value, "ci_low": low, "ci_high": high}


def top_k_overlap(proxy: Sequence[float], high: Sequence[float], k: int) -> float | None:
    if len(proxy) < k or k < 1:
        return None
    top_proxy = set(np.argsort(-np.asarray(proxy), kind="stable")[:k])
    top_high = set(np.argsort(-np.asarray(high), kind="stable")[:k])
    return len(top_proxy & top_high) / k


def regret(proxy: Sequence[float], high: Sequence[float]) -> float | None:
    """How much higher-fidelity accuracy the proxy's pick gives up against the best (fraction)."""
    if not proxy:
        return None
    pick = int(np.argmax(proxy))
    return float(max(high) - high[pick])


def noise_ceiling(per_seed: Sequence[dict[int, float]]) -> dict[str, Any]:
    """Mean Kendall τ-b between the rankings of two seeds at one fidelity, over seed pairs."""
    seeds = sorted(set.intersection(*(set(p) for p in per_seed))) if per_seed else []
    values = [
        value
        for a, b in itertools.combinations(seeds, 2)
        if (value := kendall([p[a] for p in per_seed], [p[b] for p in per_seed])) is not None
    ]
    return {"value": statistics.fmean(values) if values else None, "seed_pairs": len(values)}


def grad_norm_at_init(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Zero-cost proxy: the summed L2 norm of the loss gradient at initialization, one batch."""
    model.train()
    loss = F.cross_entropy(model(images), labels)
    grads = torch.autograd.grad(loss, [p for p in model.parameters() if p.requires_grad])
    return float(sum(g.norm() for g in grads))


@dataclass
class Calibration:
    problem: Problem
    architectures: list[Candidate]
    seeds: int  # at the higher fidelity
    high: Rung
    proxy_seeds: int

    def seed_lists(self, ladder: Ladder) -> dict[int, tuple[int, ...]]:
        """Per rung (0: proxy, 1: higher) its paired seeds; the higher fidelity's are the first
        of the proxy's (or more), so a seed initialises a candidate the same at both."""
        return {0: ladder.seeds(self.proxy_seeds), 1: ladder.seeds(self.seeds)}

    @property
    def config(self) -> StudyConfig:
        return self.problem.config


def high_fidelity(config: StudyConfig, synthetic: bool, given: Rung | None = None) -> Rung:
    """``given`` (--high-epochs/--high-images); else the schedule's last rung; without one, or
    on generated data, twice the proxy's epochs."""
    proxy = config.proxy
    if given is not None:
        return given
    if config.schedule and config.schedule.rungs and not synthetic:
        last = config.schedule.rungs[-1]
        return Rung(epochs=last.epochs, images=last.images)
    return Rung(epochs=2 * proxy.epochs, images=proxy.train_images)


def plan_calibration(
    config: StudyConfig,
    architectures: int,
    seeds: int,
    proxy_seeds: int | None = None,
    high: Rung | None = None,
) -> Calibration:
    """``seeds`` at the higher fidelity, ``proxy_seeds`` (default: as many) at the proxy."""
    if architectures < 2:
        raise InvalidInput(f"--architectures {architectures} is too few; allowed: 2 or more")
    high = high_fidelity(config, config.proxy.data == "synthetic", high)
    calibration_config = config.model_copy(
        update={
            "name": f"{config.name}-calibration",
            "pruner": "none",
            "schedule": ScheduleConfig(
                rungs=[Rung(epochs=high.epochs, images=high.images, seeds=seeds)],
                confirm=Confirm(top_k=1, seeds=max(5, seeds)),
                reference_seeds=max(2, seeds),
            ),
        }
    )
    problem = prepare(calibration_config)
    chosen = stratified_sample(
        feasible_pool(problem, config.sampler.seed), architectures, config.sampler.seed
    )
    return Calibration(problem, chosen, seeds, high, seeds if proxy_seeds is None else proxy_seeds)


POOL_SAMPLES = 20_000


def feasible_pool(problem: Problem, seed: int) -> list[Candidate]:
    """Feasible configurations to stratify over: all of them where the space is small enough to
    enumerate, else the feasible ones among uniform samples of it."""
    from ulsam_nas.search.dryrun import EXACT_LIMIT

    parameters = problem.parameters
    if sum(parameters.configuration_counts().values()) <= EXACT_LIMIT:
        chunks = parameters.enumerate()
    else:
        chunks = iter([parameters.sample(np.random.default_rng(seed), POOL_SAMPLES)])
    found: dict[str, Candidate] = {}
    for widths, choices in chunks:
        _, inside = parameters.costed(widths, choices)
        for w, row in zip(widths[inside], choices[inside], strict=True):
            width, plan = parameters.configuration(int(w), [int(c) for c in row])
            candidate = problem.parameters.candidate(Candidate.key_of(width, plan))
            found[candidate.key] = candidate
    return sorted(found.values(), key=lambda c: (c.width_mult, c.plan))


def run_calibration(
    calibration: Calibration, progress: Callable[[int, int], None] | None = None
) -> dict[str, Any]:
    """Train what is missing (resuming from the storage), then compute every statistic."""
    # No baselines: the calibration trains exactly its requests, and nothing waits in the queue.
    search = Search(calibration.problem, baselines=False)
    seeds = calibration.seed_lists(search.ladder)
    requests = [
        Request(c.key, rung, seeds[rung], "calibration") for rung in (0, 1) for c in calibration.architectures
    ]
    for done, request in enumerate(requests):
        if progress:
            progress(done, len(requests))
        results, _ = search.results()
        if request.missing(results):
            search.run_request(request)
    if progress:
        progress(len(requests), len(requests))
    trials = search.read()
    results, _ = collect_results(trials, search.ladder)
    missing = [r.key for r in requests if r.missing(results)]
    if missing:
        raise InvalidInput(f"calibration training failed for {missing[0]!r} (see the study's failed trials)")
    zero_cost = _zero_cost_scores(calibration)
    result = summarize_calibration(calibration, results, seeds, zero_cost)
    result["noise"] = noise_decomposition(
        calibration,
        results,
        collect_correct(trials, search.ladder),
        seeds,
        len(calibration.problem.data.val_labels),
    )
    result["settings"] = calibration_settings(calibration)
    return result


def noise_decomposition(
    calibration: Calibration,
    results: dict[int, dict[str, dict[int, float]]],
    correct: dict[tuple[int, str], dict[int, str]],
    seeds: dict[int, tuple[int, ...]],
    validation_images: int,
) -> dict[str, dict[str, Any]]:
    """Per fidelity: seed sd (pooled within architecture), its validation-sampling part (RMS over
    seed pairs of √(q/2N)) and the paired-difference sd (pooled over architecture pairs), in
    fractions, with their degrees of freedom."""
    import base64

    keys = [c.key for c in calibration.architectures]
    found = {}
    for name, rung in (("proxy", 0), ("high", 1)):
        sd, dof = pooled_sd([[results[rung][k][s] for s in seeds[rung]] for k in keys])
        sampling = [
            validation_sampling_sd(base64.b64decode(bits[a]), base64.b64decode(bits[b]), validation_images)
            for k in keys
            if (bits := correct.get((rung, k)))
            for a, b in itertools.combinations(seeds[rung], 2)
            if a in bits and b in bits
        ]
        differences = [
            [results[rung][a][s] - results[rung][b][s] for s in seeds[rung]]
            for a, b in itertools.combinations(keys, 2)
        ]
        paired, paired_dof = pooled_sd(differences)
        found[name] = {
            "seed_sd": sd,
            "seed_sd_dof": dof,
            "validation_sampling_sd": math.sqrt(statistics.fmean(v * v for v in sampling))
            if sampling
            else None,
            "paired_difference_sd": paired,
            "paired_difference_dof": paired_dof,
            "validation_images": validation_images,
        }
    return found


def calibration_settings(calibration: Calibration) -> dict[str, Any]:
    """What makes a calibration the one it is: a rerun with other settings writes elsewhere."""
    proxy = calibration.config.proxy
    return {
        "study": calibration.config.name.removesuffix("-calibration"),
        "data": proxy.data,
        "proxy": {"epochs": proxy.epochs, "images": proxy.train_images, "validation": proxy.val_images},
        "high": {"epochs": calibration.high.epochs, "images": calibration.high.images},
        "architectures": [c.key for c in calibration.architectures],
        "seeds": calibration.seeds,
        "proxy_seeds": calibration.proxy_seeds,
        "sampler_seed": calibration.config.sampler.seed,
    }


def _zero_cost_scores(calibration: Calibration) -> dict[str, tuple[float, float]]:
    """``key -> (grad-norm score, seconds)`` at initialization, on one seeded batch."""
    problem = calibration.problem
    data = problem.data
    generator = torch.Generator().manual_seed(problem.config.proxy.seed)
    batch = torch.randperm(len(data.train_labels), generator=generator)[:64]
    images = data.train_images[batch].float() / 255
    images = (images - images.mean()) / images.std().clamp_min(1e-3)
    labels = data.train_labels[batch]
    scores = {}
    with flushing_denormals():
        for candidate in calibration.architectures:
            torch.manual_seed(problem.config.proxy.seed)
            start = time.perf_counter()
            model = problem.build(candidate)
            score = grad_norm_at_init(model, images, labels)
            scores[candidate.key] = (score, time.perf_counter() - start)
    return scores


def summarize_calibration(
    calibration: Calibration,
    results: dict[int, dict[str, dict[int, float]]],
    seeds: dict[int, tuple[int, ...]],
    zero_cost: dict[str, tuple[float, float]],
) -> dict[str, Any]:
    architectures = calibration.architectures
    keys = [c.key for c in architectures]
    proxy = [statistics.fmean(results[0][k][s] for s in seeds[0]) for k in keys]
    high = [statistics.fmean(results[1][k][s] for s in seeds[1]) for k in keys]
    seed = calibration.config.sampler.seed
    notes: list[str] = []
    tau = with_interval(kendall, proxy, high, seed)
    rho = with_interval(spearman, proxy, high, seed)
    if tau["value"] is None:
        notes.append("Kendall τ and Spearman ρ need at least 3 architectures with distinct accuracies")
    elif tau["ci_low"] is None:
        notes.append("bootstrap intervals need at least 4 architectures")
    within = _within_width(architectures, proxy, high, notes)
    baselines = {
        "macs": with_interval(kendall, [float(c.macs) for c in architectures], high, seed),
        "params": with_interval(kendall, [float(c.params) for c in architectures], high, seed),
    }
    for name, entry in baselines.items():
        if entry["value"] is not None and entry["ci_low"] is None:
            notes.append(
                f"no bootstrap interval for the {name} baseline: resamples with tied {name} are undefined"
            )
    if len(seeds[1]) < 2:
        notes.append("one seed: the noise ceiling and the seed spread cannot be computed")
    ceiling = noise_ceiling([results[1][k] for k in keys])
    k = min(3, max(1, len(keys) // 3))
    sd_proxy, dof_proxy = pooled_sd([[results[0][key][s] for s in seeds[0]] for key in keys])
    sd_high, dof_high = pooled_sd([[results[1][key][s] for s in seeds[1]] for key in keys])
    needed = {
        name: None if sd is None else seeds_needed(math.sqrt(2) * sd, RESOLVE_POINTS / 100)
        for name, sd in (("proxy", sd_proxy), ("high", sd_high))
    }
    zero_cost_tau = with_interval(kendall, [zero_cost[key][0] for key in keys], high, seed)
    proxy_config = calibration.config.proxy
    return {
        "study": calibration.config.name,
        "architectures": len(keys),
        "seeds": list(seeds[1]),
        "proxy_seeds": list(seeds[0]),
        "proxy_fidelity": {"epochs": proxy_config.epochs, "images": proxy_config.train_images},
        "high_fidelity": {"epochs": calibration.high.epochs, "images": calibration.high.images},
        "kendall_tau": tau,
        "spearman_rho": rho,
        "within_width": within,
        "baselines": baselines,
        "noise_ceiling": ceiling,
        "top_k_overlap": {"k": k, "value": top_k_overlap(proxy, high, k)},
        "regret": regret(proxy, high),
        "zero_cost": {
            "name": "grad_norm at initialization",
            "kendall_tau": zero_cost_tau,
            "seconds_per_architecture": statistics.fmean(s for _, s in zero_cost.values()),
        },
        "seed_sd": {"proxy": sd_proxy, "proxy_dof": dof_proxy, "high": sd_high, "high_dof": dof_high},
        "seeds_to_resolve_0.5_points": needed,
        "rows": [
            {
                "candidate": c.key,
                "width_mult": c.width_mult,
                "plan": c.plan,
                "macs": c.macs,
                "params": c.params,
                "proxy_accuracy": proxy[i],
                "high_accuracy": high[i],
                "proxy_accuracies": [results[0][c.key][s] for s in seeds[0]],
                "high_accuracies": [results[1][c.key][s] for s in seeds[1]],
                "grad_norm": zero_cost[c.key][0],
            }
            for i, c in enumerate(architectures)
        ],
        "notes": notes,
    }


def _within_width(
    architectures: Sequence[Candidate], proxy: Sequence[float], high: Sequence[float], notes: list[str]
) -> dict[str, Any]:
    """τ and ρ within each width (a note where they are undefined)."""
    within: dict[str, Any] = {}
    for width in sorted({c.width_mult for c in architectures}):
        index = [i for i, c in enumerate(architectures) if c.width_mult == width]
        x, y = [proxy[i] for i in index], [high[i] for i in index]
        within[f"{width:g}"] = {
            "architectures": len(index),
            "kendall_tau": kendall(x, y),
            "spearman_rho": spearman(x, y),
        }
        if within[f"{width:g}"]["kendall_tau"] is None:
            notes.append(
                f"within width {width:g}: fewer than 3 architectures or tied accuracies, τ undefined"
            )
    return within
