"""Create a study or resume it: the sampler and pruner, the attributes reports read, the
identity check against the stored configuration, and the baselines queued first."""

from __future__ import annotations

import random
import time
import warnings
from typing import Any

import optuna

from ulsam_nas.errors import InvalidInput
from ulsam_nas.networks.plan import plan_text
from ulsam_nas.search.config import SCHEMA, StudyConfig, study_identity
from ulsam_nas.search.latency import attach_latency, store_latency
from ulsam_nas.search.problem import Problem, cost_objective
from ulsam_nas.search.records import SEARCH, candidate_record
from ulsam_nas.search.space import Candidate

SET_UP_WAIT_SECONDS = 60  # waiting for the worker that created a study to finish setting it up
GRID_LIMIT = 100_000  # configurations a grid study may enumerate and queue


def make_sampler(problem: Problem) -> optuna.samplers.BaseSampler:
    """TPE over the structured parameters: multivariate with ``group`` (the parameters of a
    position exist only when something is placed there); constrained by the constraint values
    every trial records, so infeasible draws teach it where the feasible region is."""
    seed = problem.config.sampler.seed
    name = problem.config.sampler.name
    if name in ("random", "grid"):  # grid: every feasible configuration is queued at creation
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)


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
    network = problem.parameters.network.identity(problem.space.width_mults)
    if network is not None:  # a brought network: its file may change between runs (built-ins cannot)
        identity["network"] = network
    if config.needs_latency and config.name not in _study_names(storage):
        attach_latency(problem)  # measured before the study exists: a refusal leaves nothing behind
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
        store_latency(problem, study)  # measured once, above: every later run reads it
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
    if stored.get("schema") != SCHEMA:
        raise InvalidInput(
            f"study {config.name!r} was made by an earlier ulsam-nas (schema {stored.get('schema', 1)}: one "
            f"'candidate' parameter over an enumerated space) and cannot be resumed by this one (schema "
            f"{SCHEMA}); use another --study-name (best and report still read it)"
        )
    if stored != identity:
        changed = [k for k in identity if stored.get(k) != identity[k]]
        raise InvalidInput(
            f"study {config.name!r} exists with a different "
            f"{', '.join(changed) or 'configuration'}; use another --study-name or the original settings"
        )
    attach_latency(problem, study)
    # The latest run's seeds and schedule are what ``best`` and reports read.
    study.set_user_attr("config", config.model_dump())
    return study


def _study_names(storage: Any) -> set[str]:
    return {
        summary.study_name for summary in optuna.get_all_study_summaries(storage, include_best_trial=False)
    }


def _set_up(study: optuna.Study, problem: Problem, baselines: bool) -> None:
    """A new study's attributes (what reports read) and its baselines."""
    study.set_user_attr("config", problem.config.model_dump())
    study.set_user_attr("data", problem.data.describe())
    study.set_user_attr("split", problem.data.split())
    study.set_user_attr("network", problem.network)
    study.set_user_attr("reference", problem.parameters.widest_plain)
    study.set_user_attr("parameters", sorted(problem.parameters.distributions))
    names = problem.parameters.position_names()
    if names:  # a brought network: reports name its positions without tracing it again
        study.set_user_attr("position_names", {str(i): path for i, path in names.items()})
    if problem.config.sampler.name == "grid":
        _enqueue_grid(study, problem)
    elif baselines:
        _enqueue_baselines(study, problem)


def _enqueue_grid(study: optuna.Study, problem: Problem) -> None:
    """Every feasible configuration once, in a seeded random order (the grid sampler)."""
    parameters = problem.parameters
    configurations = sum(parameters.configuration_counts().values())
    if configurations > GRID_LIMIT:
        raise InvalidInput(
            f"sampler 'grid' enumerates the space, which has {configurations:,} configurations; "
            f"allowed: up to {GRID_LIMIT:,} (use tpe or random)"
        )
    feasible = []
    for widths, choices in parameters.enumerate():
        for w, row in zip(widths, choices, strict=True):
            width, plan = parameters.configuration(int(w), [int(c) for c in row])
            if problem.parameters.assess(width, plan).feasible:
                feasible.append((width, plan))
    random.Random(problem.config.sampler.seed).shuffle(feasible)
    for width, plan in feasible:
        study.enqueue_trial(parameters.params_of(width, plan), skip_if_exists=True)
    for width in problem.space.width_mults:
        plain = problem.parameters.candidate(Candidate.key_of(width, ""))
        if not problem.parameters.within(plain):
            _record_over_budget(study, problem, plain)


def _enqueue_baselines(study: optuna.Study, problem: Problem) -> None:
    """Queued first, once: the study's reference (the widest plain backbone inside the budget)
    and the paper's placement at the widest width where it fits; plain backbones over the
    budget are recorded untrained (reports say "vanilla α over budget")."""
    space = problem.space
    wanted = []
    if problem.parameters.widest_plain is not None:
        wanted.append(problem.parameters.candidate(problem.parameters.widest_plain))
    for width in sorted(space.width_mults, reverse=True):
        if not space.paper_plan:
            break
        try:
            plan = plan_text(problem.parameters.network.at(width).resolve(space.paper_plan))
            candidate = problem.parameters.candidate(Candidate.key_of(width, plan))
            problem.parameters.params_of(width, plan)
        except InvalidInput:
            continue  # e.g. its groups do not divide the channels at this width
        if problem.parameters.assessment(candidate).feasible:
            wanted.append(candidate)
            break
    for candidate in wanted:
        params = problem.parameters.params_of(candidate.width_mult, candidate.plan)
        study.enqueue_trial(params, user_attrs={"baseline": True}, skip_if_exists=True)
    for width in space.width_mults:
        plain = problem.parameters.candidate(Candidate.key_of(width, ""))
        if not problem.parameters.within(plain):
            _record_over_budget(study, problem, plain)


def _record_over_budget(study: optuna.Study, problem: Problem, candidate: Candidate) -> None:
    values = [0.0] if problem.config.objective == "accuracy" else [0.0, cost_objective(problem, candidate)]
    attrs = {
        **candidate_record(problem, candidate, 0),
        "stage": SEARCH,
        "accuracy": 0.0,
        "over_budget": True,
        "trained_steps": 0,
        "baseline": True,
        "train_seconds": 0.0,
        "latency_ms": None,
        # Recorded for reports ("vanilla α over budget"), not drawn: no slot of the target.
        "infeasible": list(problem.parameters.assessment(candidate).reasons),
    }
    parameters = problem.parameters
    params = parameters.params_of(candidate.width_mult, candidate.plan)
    study.add_trial(
        optuna.trial.create_trial(
            values=values,
            params=params,
            distributions={name: parameters.distributions[name] for name in params},
            user_attrs=attrs,
            constraints=problem.parameters.assessment(candidate).constraints,
        )
    )
