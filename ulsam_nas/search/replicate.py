"""Does a study's answer replicate?  (``ulsam-nas replicate STUDY.yaml --seed 100``)

The same study — space, budget, data, recipe, schedule — is run again under another seed base
(other initialisations, other batch orders, another sampler stream; the same images), as the
companion study ``<name>-seed<seed>`` in the same storage.  Its recommendation replicates the
original's when it is the same configuration, or when it is tied with the original's at the
final fidelity: the original's recommendation is evaluated in the replica with the replica's
confirmation seeds (a ``replication`` evaluation, which the replica's own selection ignores) and
the two are compared with the paired test the schedule uses.  The verdict is stored in the
original study (``replication``), where ``best`` and ``report`` show it.
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
from ulsam_nas.search.schedule import Request
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
