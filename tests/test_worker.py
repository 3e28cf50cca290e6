"""A trial its worker abandoned follows one policy (``worker.requeue_abandoned``) whichever
path finds it: a local worker whose process is gone (``fail_dead``), a worker whose heartbeat
went stale (Optuna's ``fail_stale_trials``, which its own loop also calls), or a worker
interrupted inside the trial.  These paths once disagreed: the heartbeat queued a copy of any
trial with its whole record, the other two queued a search trial's bare parameters (dropping
``baseline``) with no bound on how often."""

from __future__ import annotations

import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch

from tests.studies import SPACE, write
from ulsam_nas.search.claims import claim_request
from ulsam_nas.search.config import load_study_config
from ulsam_nas.search.liveness import MAX_REQUEUES, fail_dead
from ulsam_nas.search.problem import prepare
from ulsam_nas.search.records import candidate_record, collect_results
from ulsam_nas.search.schedule import Request
from ulsam_nas.search.worker import Search

FAIL, WAITING = optuna.trial.TrialState.FAIL, optuna.trial.TrialState.WAITING
RUNNING, COMPLETE = optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.COMPLETE
GRACE_SECONDS = 1  # the study's heartbeat grace period on the database path
PLAN = "insert@12:ulsam:groups=4"


def study_file(folder: Path) -> Path:
    write(folder / "space.yaml", SPACE)
    path = folder / "study.yaml"
    path.write_text(
        "name: t\nspace: space.yaml\nbudget: {mmacs: 12.5}\n"
        "proxy: {data: synthetic, train_images: 256, val_images: 128, epochs: 1, batch_size: 64}\n"
        f"trials: 6\nheartbeat_interval: 1\ngrace_period: {GRACE_SECONDS}\n"
    )
    return path


def worker(folder: Path, storage: str) -> Search:
    """A worker on a new study with nothing queued (the tests queue what they abandon)."""
    torch.set_num_threads(1)
    url = f"sqlite:///{folder / 's.db'}" if storage == "database" else str(folder / "s.journal")
    return Search(prepare(load_study_config(study_file(folder), {"storage": url})), baselines=False)


def gone_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def first_request(search: Search) -> Request:
    """What the schedule asks for first: the vanilla reference's seeds at the first rung."""
    _, requests = search.ladder.pending({}, {}, search.reference([]))
    return requests[0]


def still_requested(search: Search, request: Request) -> bool:
    trials = search.read()
    results, costs = collect_results(trials, search.ladder)
    return request in search.ladder.pending(results, costs, search.reference(trials))[1]


def claim(search: Search, kind: str, owner: dict[str, Any]) -> optuna.Trial:
    """A trial held RUNNING by ``owner``, as that worker would have claimed it: the queued
    search trial drawn, or the schedule's first request."""
    if kind == "search":
        with warnings.catch_warnings():  # Optuna's note that heartbeats are kept by its own loop
            warnings.filterwarnings("ignore", "Heartbeat of storage", UserWarning)
            trial = search.study.ask()
        search.problem.parameters.suggest(trial)
        trial.set_user_attr("owner", owner)
        return trial
    request = first_request(search)
    candidate = search.problem.parameters.candidate(request.key)
    record = {**candidate_record(search.problem, candidate, request.rung), "reference": True, "owner": owner}
    parameters = search.problem.parameters
    return claim_request(
        search.study,
        request,
        parameters.params_of(candidate.width_mult, candidate.plan),
        parameters.distributions,
        record,
        search.problem.parameters.assessment(candidate).constraints,
    )


def fail_stale(search: Search) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(search.study)  # what Optuna's own loop calls


# -- the three paths: each abandons a trial of ``kind`` and returns its number --------------------
def died(search: Search, kind: str, monkeypatch: pytest.MonkeyPatch) -> int:
    trial = claim(search, kind, {"host": search.liveness.host, "pid": gone_pid()})
    assert fail_dead(search.study, search.read(), search.liveness) == [trial.number]
    return trial.number


def went_stale(search: Search, kind: str, monkeypatch: pytest.MonkeyPatch) -> int:
    trial = claim(search, kind, {"host": "another-host", "pid": 1})  # only its heartbeat can tell
    search.storage.record_heartbeat(trial._trial_id)
    time.sleep(GRACE_SECONDS + 1.5)  # the database's clock counts whole seconds
    fail_stale(search)
    return trial.number


def interrupted(search: Search, kind: str, monkeypatch: pytest.MonkeyPatch) -> int:
    def interrupt(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("ulsam_nas.search.evaluate.proxy_train", interrupt)
    with pytest.raises(KeyboardInterrupt):
        search.search_trial() if kind == "search" else search.run_request(first_request(search))
    monkeypatch.undo()
    return [t for t in search.read() if t.state == FAIL][-1].number


PATHS: dict[str, tuple[Callable[..., int], str]] = {
    "process-gone": (died, "journal"),
    "heartbeat-stale": (went_stale, "database"),
    "interrupted": (interrupted, "journal"),
}


Worker = tuple[Search, Callable[..., int]]  # a worker and the path that abandons its trial


@pytest.fixture(params=sorted(PATHS))
def path(request: pytest.FixtureRequest, tmp_path: Path) -> Worker:
    abandon, storage = PATHS[request.param]
    return worker(tmp_path, storage), abandon


def queue(search: Search, history: list[int] | None = None) -> dict[str, Any]:
    """Queue one configuration as create.py queues a baseline (with a retry lineage if given)."""
    params = search.problem.parameters.params_of(0.25, PLAN)
    lineage = {"failed_trial": history[0], "retry_history": history} if history else {}
    search.study.add_trial(
        optuna.trial.create_trial(
            state=WAITING, system_attrs={"fixed_params": params, **lineage}, user_attrs={"baseline": True}
        )
    )
    return params


def test_an_abandoned_search_trial_is_failed_and_its_configuration_queued_once(
    path: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    search, abandon = path
    params = queue(search)
    number = abandon(search, "search", monkeypatch)
    trials = search.read()
    assert trials[number].state == FAIL
    (copy,) = [t for t in trials if t.state == WAITING]
    assert copy.params == {} and copy.system_attrs["fixed_params"] == params
    assert copy.system_attrs["failed_trial"] == number and copy.system_attrs["retry_history"] == [number]
    assert copy.user_attrs == {"baseline": True}  # not the dead trial's record, nor its owner
    # The next draw trains the configuration, as the same baseline: nothing was lost.
    assert search.search_trial() == "ok"
    retried = search.read()[copy.number]
    assert retried.state == COMPLETE and retried.user_attrs["candidate"] == f"0.25|{PLAN}"
    assert retried.user_attrs["baseline"] is True and retried.user_attrs["owner"] == search.liveness.owner


def test_an_abandoned_requested_evaluation_is_only_failed_and_the_schedule_asks_again(
    path: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    search, abandon = path
    number = abandon(search, "requested", monkeypatch)
    trials = search.read()
    assert trials[number].state == FAIL and trials[number].user_attrs["requested"] is True
    assert not [t for t in trials if t.state in (WAITING, RUNNING)]  # no second claim on the work
    assert still_requested(search, first_request(search))


@pytest.mark.parametrize("history", [[7], [7, 8]], ids=["second-attempt", "third-attempt"])
def test_a_configuration_is_queued_again_at_most_twice(
    path: Worker, monkeypatch: pytest.MonkeyPatch, history: list[int]
) -> None:
    search, abandon = path
    queue(search, history)
    number = abandon(search, "search", monkeypatch)
    queued = [t for t in search.read() if t.state == WAITING]
    if len(history) < MAX_REQUEUES:
        (copy,) = queued
        assert copy.system_attrs["failed_trial"] == 7 and copy.system_attrs["retry_history"] == [
            *history,
            number,
        ]
    else:
        assert queued == []  # a configuration that kills every worker that trains it is given up


def test_workers_finding_one_dead_trial_together_queue_it_once(tmp_path: Path) -> None:
    """Two local workers that read it before either failed it, and the heartbeat of a third."""
    search = worker(tmp_path, "database")
    queue(search)
    trial = claim(search, "search", {"host": search.liveness.host, "pid": gone_pid()})
    search.storage.record_heartbeat(trial._trial_id)
    time.sleep(GRACE_SECONDS + 1.5)
    read = search.read()
    assert fail_dead(search.study, read, search.liveness) == [trial.number]
    assert fail_dead(search.study, read, search.liveness) == []
    fail_stale(search)
    assert len([t for t in search.read() if t.state == WAITING]) == 1


@pytest.mark.parametrize(
    ("stop", "queued"),
    [(SystemExit, 1), (OSError, 0)],
    ids=["exit-queued-again", "error-of-its-own-run-not-queued"],
)
def test_a_search_trial_is_never_left_running_by_a_worker_that_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop: type[BaseException], queued: int
) -> None:
    """Optuna's loop ends a trial on an Exception or an interrupt but leaves it RUNNING on
    SystemExit; an error of the run itself (a full disk, a bug) is a failure, not abandonment."""
    search = worker(tmp_path, "journal")
    queue(search)

    def stopping(*args: Any, **kwargs: Any) -> None:
        raise stop

    monkeypatch.setattr("ulsam_nas.search.evaluate.proxy_train", stopping)
    with pytest.raises(stop):
        search.search_trial()
    trials = search.read()
    assert trials[0].state == FAIL and RUNNING not in [t.state for t in trials]
    assert len([t for t in trials if t.state == WAITING]) == queued
