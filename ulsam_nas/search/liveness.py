"""Is a trial's worker still alive, and what happens to its trial when it is not.

A worker on this host is checked by pid; a worker on another host is taken as alive until the
database storage's heartbeat fails its trial (Optuna then queues a copy for retry).  A dead
worker's search trial is failed and its candidate queued again for the sampler's loop; a dead
worker's requested evaluation is only failed, since the schedule asks for it again."""

from __future__ import annotations

import os
import socket
import warnings
from dataclasses import dataclass, field

import optuna
from optuna.storages._heartbeat import is_heartbeat_enabled

from ulsam_nas.search.records import Trials, is_search_trial, owner_of


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
    (the storage queues a copy of each for retry); call it before reading the trials."""
    if is_heartbeat_enabled(study._storage):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)


def fail_dead(study: optuna.Study, trials: Trials, liveness: Liveness) -> list[int]:
    """Fail the RUNNING trials of ``trials`` (a recent read) whose worker was a process of this
    host that is gone; returns their numbers.  Of several workers failing one trial, exactly one
    succeeds (the storage refuses to finish a finished trial) and only it queues a search
    trial's candidate again; a requested evaluation is not queued (the schedule asks again)."""
    recovered = []
    for trial in trials:
        if trial.state != optuna.trial.TrialState.RUNNING or not liveness.dead_here(trial):
            continue
        try:
            study._storage.set_trial_state_values(trial._trial_id, state=optuna.trial.TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # finished since ``trials`` was read (its heartbeat, or another worker)
        requeue_search_trial(study, trial)
        recovered.append(trial.number)
    return recovered


def requeue_search_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Queue a failed search trial's configuration (its parameters) for the sampler's loop
    (nothing for a requested evaluation, which the schedule requests again while its seeds are
    missing)."""
    if trial.params and is_search_trial(trial.user_attrs):
        study.enqueue_trial(dict(trial.params))
