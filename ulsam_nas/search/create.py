"""Create a study or resume it: the sampler and pruner, the attributes reports read, the
identity check against the stored configuration, and the baselines queued first."""

from __future__ import annotations

import time
from typing import Any

import optuna

from ulsam_nas.backbones.network import resolve_plan
from ulsam_nas.backbones.plan import plan_text
from ulsam_nas.errors import InvalidInput
from ulsam_nas.search.config import StudyConfig, study_identity
from ulsam_nas.search.evaluate import candidate_record
from ulsam_nas.search.problem import Problem
from ulsam_nas.search.records import SEARCH
from ulsam_nas.search.space import Candidate

SET_UP_WAIT_SECONDS = 60  # waiting for the worker that created a study to finish setting it up


def make_sampler(problem: Problem) -> optuna.samplers.BaseSampler:
    seed = problem.config.sampler.seed
    name = problem.config.sampler.name
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return optuna.samplers.GridSampler({"candidate": [c.key for c in problem.feasible]}, seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=8)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(config: StudyConfig) -> optuna.pruners.BasePruner:
    if config.objective != "accuracy":
        return optuna.pruners.NopPruner()  # Optuna cannot prune multi-objective studies
    if config.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1)
    if config.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1)
    if config.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=config.proxy.epochs)
    return optuna.pruners.NopPruner()


def create_or_load(problem: Problem, storage: Any, baselines: bool = True) -> optuna.Study:
    """The study named in the configuration: created (with its attributes and, if ``baselines``,
    the baselines queued) when new, otherwise loaded once its creator has finished setting it up
    and checked against the stored identity."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = problem.config
    directions: list[Any] = ["maximize"] if config.objective == "accuracy" else ["maximize", "minimize"]
    identity = study_identity(config)
    try:
        # Creating is atomic in every storage: of several workers starting together, exactly
        # one creates the study and its baselines; the others wait until it is ready.
        study = optuna.create_study(
            study_name=config.name,
            storage=storage,
            directions=directions,
            sampler=make_sampler(problem),
            pruner=make_pruner(config),
        )
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(
            study_name=config.name, storage=storage, sampler=make_sampler(problem), pruner=make_pruner(config)
        )
    else:
        _set_up(study, problem, baselines)
        study.set_user_attr("identity", identity)  # last: the study is ready
        return study
    deadline = time.monotonic() + SET_UP_WAIT_SECONDS
    while "identity" not in study.user_attrs and time.monotonic() < deadline:
        time.sleep(0.5)
    stored = study.user_attrs.get("identity")
    if stored is None:
        raise InvalidInput(
            f"study {config.name!r} exists but was never set up (did the worker creating it "
            "stop?); use another --study-name"
        )
    if stored != identity:
        changed = [k for k in identity if stored.get(k) != identity[k]]
        raise InvalidInput(
            f"study {config.name!r} exists with a different "
            f"{', '.join(changed) or 'configuration'}; use another --study-name or the original settings"
        )
    # The latest run's seeds and schedule are what ``best`` and reports read.
    study.set_user_attr("config", config.model_dump())
    return study


def _set_up(study: optuna.Study, problem: Problem, baselines: bool) -> None:
    """A new study's attributes (what reports read) and its baselines."""
    study.set_user_attr("config", problem.config.model_dump())
    study.set_user_attr("data", problem.data.describe())
    study.set_user_attr("network", problem.network)
    study.set_user_attr("reference", problem.widest_plain)
    study.set_user_attr("feasible", len(problem.feasible))
    study.set_user_attr("candidates", len(problem.candidates))
    if baselines:
        _enqueue_baselines(study, problem)


def _enqueue_baselines(study: optuna.Study, problem: Problem) -> None:
    """The plain backbone at every width and the paper's placement, once, first; plain
    backbones over the budget are recorded untrained."""
    space = problem.space
    wanted = []
    for width in space.width_mults:
        wanted.append(problem.by_key[Candidate.key_of(width, "")])
        if space.paper_plan:
            try:
                plan = plan_text(resolve_plan(problem.table(width), space.paper_plan))
            except InvalidInput:
                continue  # e.g. its groups do not divide the channels at this width
            if Candidate.key_of(width, plan) in problem.by_key:
                wanted.append(problem.by_key[Candidate.key_of(width, plan)])
    for candidate in wanted:
        if problem.within(candidate):
            if problem.config.sampler.name == "grid":
                continue  # the grid visits every feasible candidate; a queued copy would repeat one
            study.enqueue_trial(
                {"candidate": candidate.key}, user_attrs={"baseline": True}, skip_if_exists=True
            )
        elif candidate.plan == "":
            _record_over_budget(study, problem, candidate)


def _record_over_budget(study: optuna.Study, problem: Problem, candidate: Candidate) -> None:
    values = [0.0] if problem.config.objective == "accuracy" else [0.0, float(candidate.macs)]
    attrs = {
        **candidate_record(problem, candidate, 0),
        "stage": SEARCH,
        "accuracy": 0.0,
        "over_budget": True,
        "trained_steps": 0,
        "baseline": True,
        "train_seconds": 0.0,
        "latency_ms": None,
    }
    study.add_trial(
        optuna.trial.create_trial(values=values, user_attrs=attrs, constraints=problem.violations(candidate))
    )
