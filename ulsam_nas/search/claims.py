"""Who holds what: the ``trials`` target's slots and the schedule's evaluations held by live
workers, and how a worker claims a trial.

* A search slot is taken by a finished search trial or a live RUNNING one.  A worker draws a new
  trial only while slots are free; a trial that lost the race for the last slot (an earlier live
  trial filled it) is failed untrained as ``surplus``.
* A requested evaluation is claimed by creating its trial RUNNING, owner included, in one
  storage write.  Two workers may still claim the same request (or draw the same
  configuration) at once; neither trains a seed twice, because an evaluation first waits until
  every earlier live trial has written what it evaluates (a drawn trial does so milliseconds
  after it starts), then waits for an earlier live trial training the same seeds
  (``evaluate.Evaluator.known_seeds``) and reuses them.
* A queued trial (a baseline, an abandoned search trial's configuration queued again by
  ``liveness.requeue_abandoned``, or a requested evaluation's copy that older studies hold) is
  claimed by moving it from WAITING to RUNNING, which succeeds for exactly one worker."""

from __future__ import annotations

from typing import Any

import optuna

from ulsam_nas.search.liveness import Liveness
from ulsam_nas.search.records import (
    FINISHED,
    SEARCH,
    Record,
    Trials,
    counts_toward_target,
    is_search_trial,
    same_evaluation,
    seeds_wanted,
    stage_of,
)
from ulsam_nas.search.schedule import Ladder, Request, Results

RUNNING = optuna.trial.TrialState.RUNNING


class Surplus(RuntimeError):
    """A search trial started after the target was already claimed by earlier live trials (two
    workers raced for the last slot): it is failed untrained, marked ``surplus``."""


def claimed_slots(trials: Trials, liveness: Liveness, before: int | None = None) -> int:
    """Finished search trials plus live running ones (numbered below ``before`` if given); a draw
    known to be infeasible takes no slot."""
    taken = 0
    for trial in trials:
        if not counts_toward_target(trial.user_attrs):
            continue
        if trial.state in FINISHED:
            taken += 1
        elif trial.state == RUNNING and (before is None or trial.number < before) and liveness.alive(trial):
            taken += 1
    return taken


def search_running(trials: Trials, liveness: Liveness) -> bool:
    """A live worker is still running a search-stage trial (it may still change the ranking)."""
    return any(t.state == RUNNING and stage_of(t.user_attrs) == SEARCH and liveness.alive(t) for t in trials)


def evaluation_claimed(
    trials: Trials, request: Request, results: Results, ladder: Ladder, liveness: Liveness
) -> bool:
    """A live worker is already training this evaluation's missing seeds."""
    missing = set(request.missing(results))
    return any(
        t.state == RUNNING
        and same_evaluation(t.user_attrs, request.key, request.rung, ladder)
        and missing <= seeds_wanted(t.user_attrs)
        and liveness.alive(t)
        for t in trials
    )


def claim_request(
    study: optuna.Study,
    request: Request,
    params: dict[str, Any],
    distributions: dict[str, Any],
    record: dict[str, Any],
    constraints: dict[str, float],
) -> optuna.Trial:
    """A new RUNNING trial for ``request`` whose parameters (the configuration's), attributes
    (``record``: owner included) and closed-form constraints are written with its creation."""
    frozen = optuna.trial.create_trial(
        state=RUNNING,
        constraints=constraints,
        params=params,
        distributions={name: distributions[name] for name in params},
        user_attrs={
            **record,
            "stage": request.stage,
            "rung": request.rung,
            "seeds_wanted": list(request.seeds),
            "requested": True,  # by the schedule, not drawn by the sampler
        },
    )
    trial_id = study._storage.create_new_trial(study._study_id, template_trial=frozen)
    return optuna.Trial(study, trial_id)


def claim_queued_request(
    study: optuna.Study, trials: Trials, liveness: Liveness
) -> tuple[optuna.Trial, Request] | None:
    """Claim a requested evaluation queued again after its worker died (a copy with its
    attributes, which studies written before ``liveness.requeue_abandoned`` may hold: it queues
    none now) and write this worker as its owner; None when there is none."""
    for queued in trials:
        attrs, record = queued.user_attrs, Record.of(queued.user_attrs)
        if queued.state != optuna.trial.TrialState.WAITING or is_search_trial(attrs):
            continue
        if record.candidate is None or record.seeds_wanted is None:
            continue
        if study._storage.set_trial_state_values(queued._trial_id, state=RUNNING):
            study._storage.set_trial_user_attr(queued._trial_id, "owner", liveness.owner)
            request = Request(record.candidate, record.rung, record.seeds_wanted, stage_of(attrs))
            return optuna.Trial(study, queued._trial_id), request
    return None
