"""Fault scenarios on real worker processes, shared by tests/test_faults.py and
benchmarks/faults.py: several workers on one study, a worker killed with SIGKILL mid-training, a
worker interrupted with Ctrl-C (SIGINT) and rerun; then an audit of the study's storage."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import optuna

from tests.studies import SPACE  # the small space the search tests use
from ulsam_nas.search.records import counts_toward_target


@dataclass
class Outcome:
    scenario: str
    storage: str  # "journal" or "postgresql"
    requested: int
    finished: int = 0
    trained_twice: int = 0  # (candidate, fidelity, seed) trained by more than one finished trial
    lost: int = 0  # trials left running or queued, or failed and never retried
    failed: int = 0
    surplus: int = 0  # trials that lost the race for the last slot, failed untrained
    recovery_seconds: float | None = None  # from the kill to its trial failed and queued again
    exit_codes: list[int] = field(default_factory=list)
    seconds: float = 0.0


SCHEDULE = """schedule:
  rungs: [{epochs: 4, images: 256, seeds: 2}]
  reduction_factor: 2
  confirm: {top_k: 2, seeds: 5}
  reference_seeds: 2
"""


def write_study(
    folder: Path,
    name: str,
    trials: int,
    epochs: int = 2,
    images: int = 256,
    heartbeat: tuple[int, int] = (1, 3),
    schedule: bool = False,
) -> Path:
    """A study on generated data whose trials each train a few seconds on one thread."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "space.yaml").write_text(SPACE)
    path = folder / f"{name}.yaml"
    path.write_text(
        f"name: {name}\nspace: space.yaml\nbudget: {{mmacs: 12.5}}\ntrials: {trials}\n"
        f"proxy: {{data: synthetic, train_images: {images}, val_images: 64, epochs: {epochs}, "
        "batch_size: 32}\n"
        f"heartbeat_interval: {heartbeat[0]}\ngrace_period: {heartbeat[1]}\n" + (SCHEDULE if schedule else "")
    )
    return path


def start_worker(
    study: Path, storage: str, host: str | None = None, extra: tuple[str, ...] = ()
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ULSAM_NAS_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    if host:
        env["ULSAM_NAS_HOST"] = host
    return subprocess.Popen(
        [sys.executable, "-m", "ulsam_nas", "search", str(study), "--storage", storage, "--quiet", *extra],
        env=env,
        # A job started in the background (as CI runs its script) inherits SIGINT ignored, and
        # Python then installs no KeyboardInterrupt handler: give the worker a terminal's default.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def open_study(storage: str, name: str) -> optuna.Study:
    if "://" in storage:
        return optuna.load_study(study_name=name, storage=storage)
    backend = optuna.storages.journal.JournalFileBackend(storage)
    return optuna.load_study(study_name=name, storage=optuna.storages.JournalStorage(backend))


def _study_when_ready(storage: str, name: str, timeout: float = 120.0) -> optuna.Study:
    deadline = time.monotonic() + timeout
    while True:
        try:
            study = open_study(storage, name)
            if "identity" in study.user_attrs:
                return study
        except (KeyError, FileNotFoundError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"study {name} was not created within {timeout} s")
        time.sleep(0.3)


def wait_for_training(
    storage: str, name: str, pids: list[int], stage: str | None = None, timeout: float = 300.0
) -> tuple[int, int]:
    """(trial number, worker pid) of a trial one of ``pids`` is training now (of ``stage``:
    "search" or any later stage when "later").  A draw outside the budget is RUNNING too, for
    milliseconds, and trains nothing: only a trial with its evaluation record (``fidelity``)
    counts."""
    study = _study_when_ready(storage, name, timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            pid = (trial.user_attrs.get("owner") or {}).get("pid")
            kind = trial.user_attrs.get("stage", "search")
            training = "fidelity" in trial.user_attrs
            if training and pid in pids and (stage is None or (kind == "search") == (stage == "search")):
                return trial.number, pid
        time.sleep(0.2)
    raise TimeoutError(f"no worker started a {stage or ''} trial within {timeout} s")


def parameters_of(trial: optuna.trial.FrozenTrial) -> dict:
    """A trial's parameters, also for a queued trial (whose params are not set yet)."""
    return dict(trial.params) or dict(trial.system_attrs.get("fixed_params") or {})


def same_configuration(a: optuna.trial.FrozenTrial, b: optuna.trial.FrozenTrial) -> bool:
    """Both evaluate one configuration: the same candidate key where both have written theirs,
    else the same parameters (a queued retry of a search trial has only those)."""
    if "candidate" in a.user_attrs and "candidate" in b.user_attrs:
        return a.user_attrs["candidate"] == b.user_attrs["candidate"]
    return parameters_of(a) == parameters_of(b)


def wait_for_recovery(storage: str, name: str, number: int, timeout: float = 300.0) -> float:
    """Seconds until trial ``number`` is failed and its candidate queued or running again."""
    start = time.monotonic()
    study = open_study(storage, name)
    while time.monotonic() - start < timeout:
        trials = study.get_trials(deepcopy=False)
        dead = trials[number]
        if dead.state == optuna.trial.TrialState.FAIL:
            again = [
                t
                for t in trials
                if t.number > number
                and same_configuration(t, dead)
                and t.user_attrs.get("stage", "search") == dead.user_attrs.get("stage", "search")
            ]
            if again:
                return time.monotonic() - start
        time.sleep(0.1)
    raise TimeoutError(f"trial {number} was not recovered within {timeout} s")


def evaluation_of(trial: optuna.trial.FrozenTrial) -> tuple[str, int]:
    """What a trial evaluates besides its configuration: its stage and rung (a search trial that
    died before writing its record is a search-stage, first-rung one)."""
    attrs = trial.user_attrs
    return attrs.get("stage", "search"), int(attrs.get("rung", 0))


def retries(failed: optuna.trial.FrozenTrial, later: optuna.trial.FrozenTrial) -> bool:
    """``later`` finished the evaluation ``failed`` did not: the same configuration, stage and
    rung."""
    return (
        later.number > failed.number
        and later.state == optuna.trial.TrialState.COMPLETE
        and evaluation_of(later) == evaluation_of(failed)
        and same_configuration(later, failed)
    )


def audit(storage: str, name: str, outcome: Outcome) -> Outcome:
    """Finished search trials, configurations trained twice, trials lost."""
    study = open_study(storage, name)
    trials = study.get_trials(deepcopy=False)
    # The trials the target counts (drawn by the sampler, inside the constraints).
    search = [t for t in trials if counts_toward_target(t.user_attrs)]
    finished_states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    outcome.finished = sum(t.state in finished_states for t in search)
    runs: Counter[tuple[str, str, int]] = Counter()
    for trial in trials:
        if trial.state == optuna.trial.TrialState.COMPLETE:
            fidelity = str(trial.user_attrs.get("fidelity"))
            for seed in trial.user_attrs.get("trained_seeds") or []:
                runs[(trial.user_attrs["candidate"], fidelity, seed)] += 1
    outcome.trained_twice = sum(1 for count in runs.values() if count > 1)
    outcome.failed = sum(t.state == optuna.trial.TrialState.FAIL for t in trials)
    outcome.surplus = sum(bool(t.user_attrs.get("surplus")) for t in trials)
    left = [
        t for t in trials if t.state in (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING)
    ]
    # A failed (not surplus) trial is lost unless its candidate was evaluated again later.
    unretried = [
        t
        for t in trials
        if t.state == optuna.trial.TrialState.FAIL
        and not t.user_attrs.get("surplus")
        and not any(retries(t, u) for u in trials)
    ]
    outcome.lost = len(left) + len(unretried)
    return outcome


def run_workers(
    folder: Path, storage: str, workers: int = 3, trials: int = 6, kind: str = "journal"
) -> Outcome:
    """``workers`` processes started together on a new study until ``trials`` finished."""
    name = f"workers{workers}x{trials}-{uuid.uuid4().hex[:8]}"
    study = write_study(folder, name, trials)
    start = time.monotonic()
    processes = [start_worker(study, storage) for _ in range(workers)]
    codes = [p.wait(timeout=600) for p in processes]
    outcome = Outcome(f"{workers} workers × {trials} trials", kind, trials, exit_codes=codes)
    outcome.seconds = time.monotonic() - start
    return audit(storage, name, outcome)


def run_kill(
    folder: Path,
    storage: str,
    trials: int = 6,
    kind: str = "journal",
    remote: bool = False,
    stage: str = "search",
) -> Outcome:
    """Three workers; the one training a trial of ``stage`` ("search", or "later": a fidelity
    rung or the confirmation) is killed with SIGKILL.  With ``remote`` every worker records its
    own host name, so only the storage's heartbeat can tell that one died."""
    later = stage != "search"
    name = f"kill-{stage}{'-remote' if remote else ''}-{uuid.uuid4().hex[:8]}"
    study = write_study(folder, name, trials, epochs=1 if later else 4, schedule=later)
    start = time.monotonic()
    workers = [start_worker(study, storage, f"host{i}" if remote else None) for i in range(3)]
    number, pid = wait_for_training(storage, name, [w.pid for w in workers], stage)
    time.sleep(0.5)
    victim = next(w for w in workers if w.pid == pid)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    recovery = wait_for_recovery(storage, name, number)
    codes = [w.wait(timeout=600) for w in workers]
    where = "a later stage's evaluation" if later else "a search trial"
    outcome = Outcome(
        f"SIGKILL of a worker training {where}" + (" (hosts apart: heartbeat)" if remote else ""),
        kind,
        trials,
        recovery_seconds=recovery,
        exit_codes=sorted(codes),
    )
    outcome.seconds = time.monotonic() - start
    return audit(storage, name, outcome)


def wait_for_requested_search_evaluation(storage: str, name: str, pid: int, timeout: float = 300.0) -> int:
    """The number of the trial in which worker ``pid`` trains a search-stage evaluation that the
    schedule requested (the reference's missing seeds), not one the sampler drew."""
    study = _study_when_ready(storage, name, timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            attrs = trial.user_attrs
            if (attrs.get("owner") or {}).get("pid") == pid and attrs.get("requested"):
                assert attrs.get("stage") == "search" and attrs.get("rung") == 0, attrs
                return trial.number
        time.sleep(0.2)
    raise TimeoutError(f"worker {pid} started no requested search-stage evaluation within {timeout} s")


def run_kill_reference_request(folder: Path, storage: str, trials: int = 3) -> Outcome:
    """A study searched without a schedule, then run with one whose reference needs more seeds at
    the first rung: the worker training those seeds (a requested search-stage evaluation, not a
    sampler's trial) is killed with SIGKILL, and the same command is run again to the end."""
    name = f"kill-reference-{uuid.uuid4().hex[:8]}"
    # 2 epochs: the schedule's rung 1 is 4 epochs, a fidelity of its own.
    study = write_study(folder, name, trials, epochs=2, schedule=True)
    first = start_worker(study, storage, extra=("--no-schedule",)).wait(timeout=600)
    victim = start_worker(study, storage)
    number = wait_for_requested_search_evaluation(storage, name, victim.pid)
    time.sleep(0.5)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    start = time.monotonic()
    rerun = start_worker(study, storage)
    last = rerun.wait(timeout=600)
    outcome = Outcome(
        "SIGKILL of a worker training the reference's requested seeds",
        "journal",
        trials,
        exit_codes=[first, victim.returncode, last],
    )
    outcome.seconds = time.monotonic() - start
    outcome = audit(storage, name, outcome)
    assert open_study(storage, name).get_trials(deepcopy=False)[number].state == optuna.trial.TrialState.FAIL
    return outcome


def run_interrupt(folder: Path, storage: str, trials: int = 4, kind: str = "journal") -> Outcome:
    """One worker interrupted with SIGINT (Ctrl-C) mid-training, then run again to the target."""
    name = f"interrupt{trials}-{uuid.uuid4().hex[:8]}"
    # Trials of several seconds each, so the interrupt lands in training, not after the last.
    study = write_study(folder, name, trials, epochs=4, images=1024)
    start = time.monotonic()
    worker = start_worker(study, storage)
    wait_for_training(storage, name, [worker.pid])
    time.sleep(0.5)
    worker.send_signal(signal.SIGINT)
    first = worker.wait(timeout=120)
    rerun = start_worker(study, storage)
    second = rerun.wait(timeout=600)
    outcome = Outcome("Ctrl-C, then the same command again", kind, trials, exit_codes=[first, second])
    outcome.seconds = time.monotonic() - start
    return audit(storage, name, outcome)
