"""Does a study's answer replicate?  (``ulsam-nas replicate STUDY.yaml --seed 100``)

The same study — space, budget, data, recipe, schedule — is run again under another seed base
(other initialisations, other batch orders, another sampler stream; the same images), as the
companion study ``<name>-seed<seed>`` in the same storage.  Its recommendation replicates the
original's when it is the same configuration, or when it is tied with the original's at the
final fidelity: the original's recommendation is evaluated in the replica with the replica's
confirmation seeds (a ``replication`` evaluation, which the replica's own selection ignores) and
the two are compared with the paired test the schedule uses.  The verdict is stored in the
original study (``replication``), where ``best`` and ``report`` show it.

``--epochs E [--images N]`` asks the other question a proxy's answer raises: does it hold when
the networks are trained longer?  The recommendation and the reference are trained at that
fidelity on fresh paired seeds (the companion study ``<name>-e<E>i<N>-seed<base>``, one seed per
trial, so an interrupted check resumes where it stopped), and their paired difference is stated
with its interval (``fidelity_check`` in the original study).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ulsam_nas.errors import InvalidInput
from ulsam_nas.search.config import StudyConfig
from ulsam_nas.search.noise import TEST_NAME, paired_comparison
from ulsam_nas.search.problem import prepare
from ulsam_nas.search.records import REPLICATION, collect_replications
from ulsam_nas.search.results import StudyResults
from ulsam_nas.search.schedule import Confirm, Request, Rung, ScheduleConfig
from ulsam_nas.search.storage import open_study
from ulsam_nas.search.worker import Progress, Search


def replica_config(config: StudyConfig, seed: int) -> StudyConfig:
    """The study under another seed base, named ``<name>-seed<seed>``."""
    if seed == config.proxy.seed:
        raise InvalidInput(
            f"--seed {seed} is the study's own seed; give another seed base, e.g. {seed + 100}"
        )
    return config.model_copy(
        update={
            "name": f"{config.name}-seed{seed}",
            "sampler": config.sampler.model_copy(update={"seed": seed}),
            "proxy": config.proxy.model_copy(update={"seed": seed}),
        }
    )


def replicate(config: StudyConfig, seed: int, progress: Progress | None = None,
              on_stage: Callable[[str], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """Run (or resume) the replica to its target and schedule, compare the recommendations and
    store the verdict in the original study; returns it."""
    original = StudyResults.load(open_study(config.storage_url, config.name))
    if original.partial():
        raise InvalidInput(
            f"study {config.name!r} is not finished ({original.partial()[0]}); run 'ulsam-nas search' first"
        )
    if original.selection.recommended is None or not original.selection.confirmed:
        raise InvalidInput(f"study {config.name!r} has no confirmed recommendation to replicate")
    replica = Search(prepare(replica_config(config, seed)))
    if on_stage:
        on_stage(f"replica {replica.config.name!r}")
    replica.run(replica.config.trials, progress)
    theirs = StudyResults.load(replica.study)
    if theirs.partial() or theirs.selection.recommended is None:
        raise InvalidInput(f"the replica {replica.config.name!r} did not finish: {theirs.partial()}")
    ours_key, their_key = original.selection.recommended, theirs.selection.recommended
    verdict: dict[str, Any] = {
        "seed": seed,
        "replica": replica.config.name,
        "original_recommended": ours_key,
        "replica_recommended": their_key,
        "test": TEST_NAME,
    }
    if ours_key == their_key:
        verdict |= {"replicates": True, "comparison": None}
        verdict["sentence"] = (
            f"with seed base {seed}, the replica {replica.config.name!r} recommends the same configuration, "
            f"{original.label(ours_key)}"
        )
    else:
        by_key = {r.key: r for r in theirs.selection.ranked}
        seeds = by_key[their_key].seeds
        if on_stage:
            on_stage(f"replication: {ours_key} with the replica's {len(seeds)} confirmation seeds")
        replica.run_request(Request(ours_key, replica.ladder.last, tuple(seeds), REPLICATION))
        found = collect_replications(replica.read(), replica.ladder).get(ours_key, {})
        theirs_found = dict(zip(by_key[their_key].seeds, by_key[their_key].accuracies, strict=True))
        comparison = paired_comparison(theirs_found, found)
        tied = comparison.tied
        verdict |= {
            "replicates": bool(tied),
            "comparison": {
                "seeds": comparison.n,
                "mean": comparison.difference,
                "ci_low": comparison.ci_low,
                "ci_high": comparison.ci_high,
                "p_value": comparison.p_value,
            },
        }
        interval = (
            f"{comparison.difference * 100:+.2f} points "
            f"[{comparison.ci_low * 100:+.2f}, {comparison.ci_high * 100:+.2f}]"
            if comparison.ci_low is not None and comparison.ci_high is not None
            else f"{comparison.difference * 100:+.2f} points (no interval)"
        )
        verdict["sentence"] = (
            f"with seed base {seed}, the replica recommends {theirs.label(their_key)}; it − the original's "
            f"{original.label(ours_key)} = {interval} over the replica's {comparison.n} paired confirmation "
            "seeds: "
            + ("tied, so the answer replicates" if tied else "not tied: the answer does not replicate")
        )
    original_study = open_study(config.storage_url, config.name)
    original_study.set_user_attr("replication", verdict)
    return verdict


FIDELITY_SEED_OFFSET = 2000  # fresh seeds: the search's are base + 0.., the confirmation's base + 1000..


def fidelity_config(config: StudyConfig, fidelity: Rung, seed: int) -> StudyConfig:
    """The companion study that trains the answer at ``fidelity`` under seed base ``seed``."""
    images = "all" if fidelity.images is None else fidelity.images
    return config.model_copy(
        update={
            "name": f"{config.name}-e{fidelity.epochs}i{images}-seed{seed}",
            "pruner": "none",
            "proxy": config.proxy.model_copy(update={"seed": seed}),
            "schedule": ScheduleConfig(
                rungs=[fidelity],
                confirm=Confirm(top_k=1, seeds=max(5, fidelity.seeds)),
                reference_seeds=max(2, fidelity.seeds),
            ),
        }
    )


def check_fidelity(config: StudyConfig, fidelity: Rung, seed: int | None = None,
                   on_stage: Callable[[str], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """Train the study's recommendation and its reference at ``fidelity`` on ``fidelity.seeds``
    fresh paired seeds (resuming what a previous run trained), store and return the verdict."""
    original = StudyResults.load(open_study(config.storage_url, config.name))
    if original.partial():
        raise InvalidInput(
            f"study {config.name!r} is not finished ({original.partial()[0]}); run 'ulsam-nas search' first"
        )
    recommended, reference = original.selection.recommended, original.reference
    if recommended is None or reference is None:
        raise InvalidInput(f"study {config.name!r} has no recommendation and reference to check")
    if recommended == reference:
        raise InvalidInput(
            f"study {config.name!r} recommends its reference {original.label(reference)}: "
            "there is no difference to check at another fidelity"
        )
    base = config.proxy.seed + FIDELITY_SEED_OFFSET if seed is None else seed
    if base == config.proxy.seed:
        raise InvalidInput(f"--seed {base} is the study's own seed base; give another, e.g. {base + 2000}")
    companion = Search(prepare(fidelity_config(config, fidelity, base)), baselines=False)
    rung = companion.ladder.last
    seeds = companion.ladder.seeds(fidelity.seeds)
    # One seed per trial, the two candidates alternating: an interrupted check keeps whole pairs.
    for position, seed_value in enumerate(seeds):
        for key in (recommended, reference):
            request = Request(key, rung, (seed_value,), "calibration")
            if request.missing(companion.results()[0]):
                if on_stage:
                    on_stage(
                        f"seed {position + 1}/{len(seeds)}: {original.label(key)} at "
                        f"{fidelity.epochs} epochs over {fidelity.images or 'all'} images"
                    )
                companion.run_request(request)
    results = companion.results()[0].get(rung, {})
    found = {key: results.get(key, {}) for key in (recommended, reference)}
    if any(len(found[key]) < len(seeds) for key in found):
        raise InvalidInput(
            f"training failed in the companion study {companion.config.name!r} (see its failed trials)"
        )
    comparison = paired_comparison(found[recommended], found[reference])
    proxy = original.selection.versus_reference
    verdict: dict[str, Any] = {
        "study": companion.config.name,
        "fidelity": {"epochs": fidelity.epochs, "images": fidelity.images},
        "proxy_fidelity": {"epochs": config.proxy.epochs, "images": config.proxy.train_images},
        "recommended": recommended,
        "reference": reference,
        "seeds": list(seeds),
        "recommended_accuracies": [found[recommended][s] for s in seeds],
        "reference_accuracies": [found[reference][s] for s in seeds],
        "test": TEST_NAME,
        "mean": comparison.difference,
        "ci_low": comparison.ci_low,
        "ci_high": comparison.ci_high,
        "p_value": comparison.p_value,
        "proxy_mean": None if proxy is None else proxy.difference,
    }
    verdict["holds"] = _holds(
        comparison.difference, comparison.ci_low, comparison.ci_high, verdict["proxy_mean"]
    )
    verdict["sentence"] = _fidelity_sentence(original, verdict)
    open_study(config.storage_url, config.name).set_user_attr("fidelity_check", verdict)
    return verdict


def _holds(mean: float, low: float | None, high: float | None, proxy_mean: float | None) -> str:
    """'holds' (same sign, interval excludes 0), 'reversed' (other sign, interval excludes 0) or
    'unresolved' (the interval includes 0)."""
    if low is None or high is None or low <= 0.0 <= high:
        return "unresolved"
    same_sign = proxy_mean is None or (mean > 0) == (proxy_mean > 0)
    return "holds" if same_sign else "reversed"


def _fidelity_sentence(original: StudyResults, verdict: dict[str, Any]) -> str:
    fidelity = verdict["fidelity"]
    images = fidelity["images"] or "all"
    low, high = verdict["ci_low"], verdict["ci_high"]
    interval = (
        f"{verdict['mean'] * 100:+.2f} points [{low * 100:+.2f}, {high * 100:+.2f}]"
        if low is not None and high is not None
        else f"{verdict['mean'] * 100:+.2f} points (no interval)"
    )
    proxy = "" if verdict["proxy_mean"] is None else f" (at the proxy {verdict['proxy_mean'] * 100:+.2f})"
    outcome = {
        "holds": "the proxy's answer holds",
        "reversed": "the proxy's answer is reversed",
        "unresolved": "unresolved: the interval includes no difference",
    }[verdict["holds"]]
    return (
        f"trained {fidelity['epochs']} epochs over {images} images, "
        f"{original.label(verdict['recommended'])} − {original.label(verdict['reference'])} = "
        f"{interval}{proxy} over {len(verdict['seeds'])} "
        f"fresh paired seeds: {outcome}"
    )
