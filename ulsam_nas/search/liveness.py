"""Is a trial's worker still alive, and what happens to its trial when it is not.

A worker on this host is checked by pid; a worker on another host is taken as alive until the
database storage's heartbeat fails its trial.  However a trial is abandoned (its process died,
its heartbeat went stale, its worker was interrupted), it is ended as FAIL and goes through one
policy, ``requeue_abandoned``: a search trial's configuration is queued again (a bounded number of
times), a requested evaluation only failed, since the schedule asks for it again."""

from __future__ import annotations

import os
import socket
import warnings
from dataclasses import dataclass, field

import optuna
from optuna.storages._heartbeat import is_heartbeat_enabled

from ulsam_nas.search.records import Trials, counts_toward_target, owner_of


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def this_host() -> str:
    """Recorded as each trial's owner; set ULSAM_NAS_HOST where machines share a host name."""
    return os.environ.get("ULSAM_NAS_HOST") or socket.gethostname()


@dataclass(frozen=True)
class Liveness:
    host: str = field(default_factory=this_host)
    pid: int = field(default_factory=os.getpid)

    @property
    def owner(self) -> dict[str, object]:
        return {"host": self.host, "pid": self.pid}

    def alive(self, trial: optuna.trial.FrozenTrial) -> bool:
        """Whether a RUNNING trial's worker is alive (another host's worker: assumed so)."""
        owner = owner_of(trial.user_attrs)
        return owner.get("host") != self.host or pid_alive(int(owner.get("pid", -1)))

    def dead_here(self, trial: optuna.trial.FrozenTrial) -> bool:
        """A RUNNING trial owned by a process of this host that is gone."""
        owner = owner_of(trial.user_attrs)
        return owner.get("host") == self.host and owner.get("pid") != self.pid and not pid_alive(owner["pid"])


def fail_stale(study: optuna.Study) -> None:
    """On a database storage, fail the trials whose heartbeat is older than the grace period
    (each then goes through ``requeue_abandoned``); call it before reading the trials."""
    if is_heartbeat_enabled(study._storage):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)


FAIL, RUNNING, WAITING = (
    optuna.trial.TrialState.FAIL,
    optuna.trial.TrialState.RUNNING,
    optuna.trial.TrialState.WAITING,
)
# A configuration whose training kills its worker (out of memory, say) is queued again at most
# this many times: every restart would otherwise draw it first and die on it again.
MAX_REQUEUES = 2
QUEUED_ATTRS = ("baseline",)  # what create.py queues a trial with; its claimant writes the rest


def requeue_abandoned(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """The one policy for a trial its worker abandoned (died, went heartbeat-stale or was
    interrupted), applied by the one caller whose write ended it as FAIL: the storage refuses to
    end an ended trial, so of several workers that find it only one queues anything.

    A search trial's configuration is queued again like any queued configuration (its fixed
    parameters, ``baseline`` if it was one; the claimant writes its record for the run at
    hand), with Optuna's retry lineage (``failed_trial``, ``retry_history``), at most
    MAX_REQUEUES times.  A requested evaluation is not queued: the schedule asks for its missing
    seeds again, and a copy would be a second claim on that work.  A trial that died before its
    parameters were drawn has nothing to queue: its slot is free and the sampler draws again.
    """
    attrs = trial.user_attrs
    history = [*trial.system_attrs.get("retry_history", []), trial.number]
    if not trial.params or not counts_toward_target(attrs) or len(history) > MAX_REQUEUES:
        return
    lineage = {"failed_trial": history[0], "retry_history": history}
    study.add_trial(
        optuna.trial.create_trial(
            state=WAITING,
            system_attrs={"fixed_params": dict(trial.params), **lineage},
            user_attrs={name: attrs[name] for name in QUEUED_ATTRS if name in attrs},
        )
    )


def fail_and_requeue(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
    """End a trial its worker left RUNNING as FAIL and, if this caller's write is the one that
    ended it, apply the policy; False when it had already ended."""
    try:
        if not study._storage.set_trial_state_values(trial._trial_id, state=FAIL):
            return False
    except optuna.exceptions.UpdateFinishedTrialError:
        return False  # finished since it was read (its heartbeat, its worker, or another worker)
    requeue_abandoned(study, trial)
    return True


def fail_dead(study: optuna.Study, trials: Trials, liveness: Liveness) -> list[int]:
    """Fail the RUNNING trials of ``trials`` (a recent read) whose worker was a process of this
    host that is gone, each by the policy; returns the numbers of those this caller ended."""
    return [
        trial.number
        for trial in trials
        if trial.state == RUNNING and liveness.dead_here(trial) and fail_and_requeue(study, trial)
    ]
