"""Evaluate one candidate at one rung: write its record, reuse every seed already trained for it
at that fidelity, train only the missing seeds, and write the result (a latency budget is
judged when the configuration is drawn, from the study's latency table, like the MAC budget).
The trial's accuracy is the mean over its seed list (validation images).  The confirmation's
evaluations also score the data's test part (``test_accuracies``), which nothing selects on."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import optuna

from ulsam_nas.search.liveness import Liveness
from ulsam_nas.search.noise import summarize
from ulsam_nas.search.problem import Problem, cost_objective
from ulsam_nas.search.records import (
    TESTED_STAGES,
    Record,
    declared,
    per_seed,
    same_evaluation,
    seeds_wanted,
    test_per_seed,
)
from ulsam_nas.search.space import Candidate
from ulsam_nas.search.train import proxy_train

MAX_WAIT_SECONDS = 7200  # the longest one wait for other workers lasts (training, claimed slots)
WAIT_POLL_SECONDS = 2.0
# A trial writes what it evaluates milliseconds after it starts; a later trial waits for an
# earlier one to do so only while it is younger than this (its worker may have died meanwhile).
DECLARE_WAIT_SECONDS = 60.0
DECLARE_POLL_SECONDS = 0.05

Values = float | tuple[float, float]
Known = dict[int, tuple[float, int]]  # seed -> (accuracy, number of the trial that trained it)
Tested = dict[int, float]  # seed -> test accuracy, where it was measured


def values_of(problem: Problem, accuracy: float, candidate: Candidate) -> Values:
    return (
        accuracy if problem.config.objective == "accuracy" else (accuracy, cost_objective(problem, candidate))
    )


class Evaluator:
    """Trains candidates for one worker; ``read`` returns a fresh list of the study's trials."""

    def __init__(
        self, problem: Problem, read: Callable[[], list[optuna.trial.FrozenTrial]], liveness: Liveness
    ) -> None:
        self.problem = problem
        self.ladder = problem.config.ladder
        self.read = read
        self.liveness = liveness

    def known_seeds(
        self, trials: list[optuna.trial.FrozenTrial], key: str, rung: int, seeds: list[int], current: int
    ) -> tuple[Known, Tested, list[optuna.trial.FrozenTrial]]:
        """Seeds already trained for this candidate at this rung's fidelity, from ``trials`` (a
        read made after this trial was claimed).  While an earlier, live trial is training one
        of ``seeds``, or has not yet written what it evaluates, wait for it and read again (only
        earlier ones, so two workers never wait on each other); each wait is bounded.  Returns
        the seeds, their test accuracies where measured, and the latest read."""
        deadline = time.monotonic() + MAX_WAIT_SECONDS
        while True:
            known, tested = self._trained(trials, key, rung, current)
            running_now = [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
            earlier = [t for t in running_now if t.number < current and self.liveness.alive(t)]
            # Two workers that drew the same configuration at once: the later one waits for the
            # earlier's record, else neither would see the other and both would train.
            if any(_declaring(t) for t in earlier):
                time.sleep(DECLARE_POLL_SECONDS)
                trials = self.read()
                continue
            running = any(
                same_evaluation(t.user_attrs, key, rung, self.ladder)
                and seeds_wanted(t.user_attrs) & set(seeds)
                for t in earlier
            )
            if all(s in known for s in seeds) or not running or time.monotonic() > deadline:
                return known, tested, trials
            time.sleep(WAIT_POLL_SECONDS)
            trials = self.read()

    def _trained(
        self, trials: list[optuna.trial.FrozenTrial], key: str, rung: int, current: int
    ) -> tuple[Known, Tested]:
        """Seeds finished trials trained for ``key`` at ``rung`` (the earliest trial's result of
        each seed) and their test accuracies where measured."""
        known: Known = {}
        tested: Tested = {}
        for trial in trials:
            if trial.number == current or trial.state != optuna.trial.TrialState.COMPLETE:
                continue
            if not same_evaluation(trial.user_attrs, key, rung, self.ladder):
                continue
            for seed, accuracy in per_seed(trial.user_attrs).items():
                known.setdefault(seed, (accuracy, trial.number))
            for seed, accuracy in test_per_seed(trial.user_attrs).items():
                tested.setdefault(seed, accuracy)
        return known, tested

    def evaluate(
        self,
        trial: optuna.Trial,
        candidate: Candidate,
        rung: int,
        seeds: list[int],
        trials: list[optuna.trial.FrozenTrial],
        stage: str,
        prunable: bool = False,
    ) -> Values:
        """Train ``candidate`` at ``rung`` with the seeds not trained before and write the
        result into ``trial``, whose record is already written.  Only a ``prunable`` trial (one
        the sampler drew) may be pruned: a requested evaluation must deliver its seeds."""
        known, tested, trials = self.known_seeds(trials, candidate.key, rung, seeds, trial.number)
        missing = [s for s in seeds if s not in known]
        by_number = {t.number: t for t in trials}
        first = by_number[min(n for _, n in known.values())] if known else None
        latency = Record.of(first.user_attrs).latency_ms if first is not None else None
        return self._train(trial, candidate, rung, seeds, (known, tested), missing, latency, prunable, stage)

    def _train(
        self,
        trial: optuna.Trial,
        candidate: Candidate,
        rung: int,
        seeds: list[int],
        found: tuple[Known, Tested],
        missing: list[int],
        latency: float | None,
        prunable: bool,
        stage: str,
    ) -> Values:
        problem, proxy = self.problem, self.problem.config.proxy
        data, fidelity = problem.data_for(rung), self.ladder.fidelities[rung]
        settings = proxy.train_settings(fidelity.epochs)
        known, tested = found
        test = stage in TESTED_STAGES
        pruning = prunable and problem.config.objective == "accuracy" and problem.config.pruner != "none"

        def on_epoch(epoch: int, accuracy: float) -> None:
            trial.report(accuracy, epoch)
            if epoch < fidelity.epochs and trial.should_prune():  # a finished run is never pruned
                _write(
                    trial,
                    trained_steps=epoch * (len(data.train_labels) // proxy.batch_size),
                    accuracy=accuracy,
                )
                raise optuna.TrialPruned()

        accuracies = {s: known[s][0] for s in seeds if s in known}
        test_accuracies = {s: tested[s] for s in seeds if s in tested}
        correct: dict[str, str] = {}
        seconds, steps, images_per_second = 0.0, 0, None
        for i, seed in enumerate(missing):
            # Pruning judges the first trained seed only; the rest finish what it started.
            result = proxy_train(
                lambda: problem.build(candidate),
                data,
                settings,
                seed,
                on_epoch if pruning and i == 0 else None,
                test=test,
            )
            accuracies[seed] = result.accuracy
            if result.test_accuracy is not None:
                test_accuracies[seed] = result.test_accuracy
            correct[str(seed)] = base64.b64encode(result.validation_correct).decode("ascii")
            seconds += result.train_seconds
            steps += result.trained_steps
            latency, images_per_second = result.latency_ms, result.images_per_second
        ordered = [accuracies[s] for s in seeds]
        summary = summarize(ordered)
        reused = {str(s): known[s][1] for s in seeds if s in known}
        _write(
            trial,
            seeds=seeds,
            accuracies=ordered,
            accuracy=summary.mean,
            accuracy_se=summary.se,
            trained_seeds=missing,
            reused_seeds=reused,
            validation_correct=correct,
        )
        if test_accuracies:
            test_summary = summarize([test_accuracies[s] for s in sorted(test_accuracies)])
            _write(
                trial,
                test_accuracies={str(s): a for s, a in sorted(test_accuracies.items())},
                test_accuracy=test_summary.mean,
                test_accuracy_se=test_summary.se,
            )
        if not missing:
            _write(trial, duplicate_of=min(reused.values()))
        _write(trial, train_seconds=seconds, trained_steps=steps, latency_ms=latency)
        _write(trial, candidate_epochs=len(missing) * fidelity.cost(self.ladder.fidelities[0]))
        _write(trial, images_per_second=images_per_second)
        return values_of(problem, summary.mean, candidate)


def _declaring(trial: optuna.trial.FrozenTrial) -> bool:
    """A running trial that has not yet written what it evaluates, started recently enough that
    it still will (its worker may have died in between: then it never does)."""
    if declared(trial.user_attrs):
        return False
    started = trial.datetime_start
    return started is None or (datetime.now(started.tzinfo) - started).total_seconds() < DECLARE_WAIT_SECONDS


def _write(trial: optuna.Trial, **attrs: Any) -> None:
    for name, value in attrs.items():
        trial.set_user_attr(name, value)
