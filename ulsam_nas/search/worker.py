"""One worker on a study: the search phase (draw a candidate with the sampler, train it) until
the ``trials`` target is reached, then the stage phase (the fidelity schedule's requested
evaluations) until the schedule is complete.  Several workers may share a study; each step of
the loop reads the study's trials once, and each trial reads them once more after it is claimed.

A trial its worker abandoned (the process died, its heartbeat went stale, or it was interrupted)
is ended as FAIL and handed to ``liveness.requeue_abandoned``, the one policy for all three.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import optuna
from optuna.storages._heartbeat import get_heartbeat_thread

from ulsam_nas.search.claims import (
    Surplus,
    claim_queued_request,
    claim_request,
    claimed_slots,
    evaluation_claimed,
    search_running,
)
from ulsam_nas.search.create import create_or_load
from ulsam_nas.search.evaluate import MAX_WAIT_SECONDS, Evaluator, Values
from ulsam_nas.search.liveness import Liveness, fail_and_requeue, fail_dead, fail_stale, requeue_abandoned
from ulsam_nas.search.parameters import Assessment
from ulsam_nas.search.problem import Problem, cost_objective
from ulsam_nas.search.records import (
    SEARCH,
    Record,
    Trials,
    candidate_record,
    collect_results,
    is_infeasible,
    is_search_trial,
    per_seed,
    reference_of,
    rung_of,
    search_trials_finished,
    stage_of,
)
from ulsam_nas.search.schedule import Request, Results
from ulsam_nas.search.storage import open_storage

MAX_CONSECUTIVE_FAILURES = 3  # then stop: the target is not reached and the command exits 1
# Draws outside the constraints in a row before a worker gives up on the space (exit 1): the
# constrained sampler learns the feasible region, so this many means it has almost none.
MAX_CONSECUTIVE_INFEASIBLE = 2000

# progress(stage, done, total, trials): called with the step's read of the study's trials
Progress = Callable[[str, int, int, Sequence[optuna.trial.FrozenTrial]], None]
FAIL, COMPLETE = optuna.trial.TrialState.FAIL, optuna.trial.TrialState.COMPLETE
RUNNING, WAITING = optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING


class Patience:
    """Bounds each wait for other workers (from when that wait began, not the run)."""

    def __init__(self, limit: float = MAX_WAIT_SECONDS) -> None:
        self.limit = limit
        self._since: float | None = None

    def wait(self, seconds: float) -> bool:
        """Sleep and return True, or False once this wait has lasted longer than the limit."""
        now = time.monotonic()
        self._since = now if self._since is None else self._since
        if now - self._since > self.limit:
            return False
        time.sleep(seconds)
        return True

    def reset(self) -> None:
        self._since = None


class Search:
    """One process's view of a study: create or resume it, then run trials until the target."""

    def __init__(self, problem: Problem, baselines: bool = True) -> None:
        self.problem = problem
        self.config = problem.config
        self.ladder = self.config.ladder
        self.liveness = Liveness()
        config = self.config
        self.storage = open_storage(config.storage_url, config.heartbeat_interval, config.grace_period)
        self.study = create_or_load(problem, self.storage, baselines)
        self.evaluator = Evaluator(problem, self.read_failing_stale, self.liveness)
        self._target = config.trials
        self._current: int | None = None  # the id of the search trial this process is running
        self._shown: tuple[str, int] | None = None  # the stage and total progress last showed
        self._last_shown: tuple[str, int, int] | None = None

    # -- reading --------------------------------------------------------------------------------
    def read(self) -> list[optuna.trial.FrozenTrial]:
        return self.study.get_trials(deepcopy=False)

    def read_failing_stale(self) -> list[optuna.trial.FrozenTrial]:
        """A read for a wait on other workers' trials: on a database, a trial whose heartbeat
        stopped is failed first, so a wait on a dead worker of another host ends (every worker
        may be waiting, and then no other would fail it)."""
        fail_stale(self.study)
        return self.read()

    def finished(self) -> int:
        return search_trials_finished(self.read())

    def results(self) -> tuple[Results, dict]:
        """Every finished evaluation, per rung of this study's ladder, and the candidates' costs."""
        return collect_results(self.read(), self.ladder)

    def reference(self, trials: Trials) -> str | None:
        # problem.parameters.widest_plain is the key stored at creation: the identity check guarantees it.
        return reference_of(trials, self.problem.parameters.widest_plain)

    # -- the loop -------------------------------------------------------------------------------
    def run(self, target: int, progress: Progress | None = None) -> int:
        """Run search trials until ``target`` finished ones exist, then the schedule's later
        stages until it is complete; returns the number of finished search trials.  A worker
        draws a search trial only while finished plus live running ones are below the target,
        and waits (each wait bounded) while live workers hold the rest."""
        self._target = target
        self._shown = self._last_shown = None
        show = self._show(progress)
        failures = infeasible = 0
        patience = Patience()
        while failures < MAX_CONSECUTIVE_FAILURES and infeasible < MAX_CONSECUTIVE_INFEASIBLE:
            fail_stale(self.study)  # before the read, so the read sees their retry copies
            trials = self.read()
            if fail_dead(self.study, trials, self.liveness):
                continue  # read again: those trials are no longer running
            done = search_trials_finished(trials)
            if done < target or self._shown is None or self._shown[0] == SEARCH:
                show(SEARCH, done, target, trials)
            if done < target and claimed_slots(trials, self.liveness) < target:
                patience.reset()
                outcome = self.search_trial()
                # An infeasible draw is neither a failure nor a success: it leaves the count alone.
                failures = {"failed": failures + 1, "ok": 0}.get(outcome, failures)
                infeasible = infeasible + 1 if outcome == "infeasible" else 0
                continue
            if done < target or search_running(trials, self.liveness):
                if not patience.wait(1.0 if done < target else 2.0):
                    break
                continue
            outcome = self._stage_step(trials, show)
            if outcome == "done":
                break
            if outcome == "wait":
                if not patience.wait(2.0):
                    break
                continue
            patience.reset()
            failures = failures + 1 if outcome == "failed" else 0
        trials = self.read()
        if self._shown is not None:  # the last stage shown, with what its last trial added
            stage, total = self._shown
            done = search_trials_finished(trials) if stage == SEARCH else self._stage_done(trials, stage)
            show(stage, done, max(done, total), trials)
        return search_trials_finished(trials)

    def _show(self, progress: Progress | None) -> Progress:
        def show(stage: str, done: int, total: int, trials: Sequence[optuna.trial.FrozenTrial]) -> None:
            if progress is not None and (stage, done, total) != self._last_shown:
                progress(stage, done, total, trials)
            self._shown, self._last_shown = (stage, total), (stage, done, total)

        return show

    def _stage_step(self, trials: Trials, show: Progress) -> str:
        """Run one evaluation of the schedule: a retry copy queued after its worker died, else
        the first pending one no live worker holds.  Returns "ok" or "failed" for it, "wait" when
        live workers hold every pending one, "done" when the schedule is complete."""
        queued = claim_queued_request(self.study, trials, self.liveness)
        if queued is not None:
            return "ok" if self._run_claimed(*queued).state == COMPLETE else "failed"
        results, costs = collect_results(trials, self.ladder)
        stage, requests = self.ladder.pending(results, costs, self.reference(trials))
        if stage is None:
            return "done"
        done = self._stage_done(trials, stage)
        show(stage, done, done + len(requests), trials)
        free = [r for r in requests if not evaluation_claimed(trials, r, results, self.ladder, self.liveness)]
        if not free:
            return "wait"
        evaluated = self.run_request(free[0], trials)
        # A completed evaluation over the latency budget trained nothing: it resolved nothing.
        resolved = evaluated.state == COMPLETE and set(free[0].seeds) <= set(per_seed(evaluated.user_attrs))
        return "ok" if resolved else "failed"

    def _stage_done(self, trials: Trials, stage: str) -> int:
        """Finished evaluations of ``stage`` at this study's fidelities (a changed schedule's
        older evaluations do not count)."""
        return sum(
            1
            for t in trials
            if t.state == COMPLETE
            and t.user_attrs.get("stage") == stage
            and rung_of(t.user_attrs, self.ladder) is not None
        )

    # -- search trials --------------------------------------------------------------------------
    def search_trial(self) -> str:
        """Draw one trial (a queued one first) through Study.optimize, which records heartbeats
        on a database: "failed" when it failed in a way that counts (not ``surplus``),
        "infeasible" for a draw outside the constraints, else "ok"."""
        finished: list[optuna.trial.FrozenTrial] = []
        self._current = None
        try:
            self.study.optimize(
                self._search_objective,
                n_trials=1,
                catch=(RuntimeError,),
                callbacks=[lambda _, trial: finished.append(trial)],
            )
        except BaseException as stop:
            self._abandon(stop)
            raise
        trial = finished[0]
        if trial.state == FAIL and not Record.of(trial.user_attrs).surplus:
            return "failed"
        return "infeasible" if is_infeasible(trial.user_attrs) else "ok"

    def _abandon(self, stop: BaseException) -> None:
        """This worker stops inside a search trial: the trial is ended in storage and given to
        the policy, so a rerun trains its configuration (not once it was told COMPLETE, nor
        after an error of its own run, which failed on its own account like a RuntimeError)."""
        if self._current is None:
            return
        trial = self.storage.get_trial(self._current)
        if trial.state == RUNNING:  # Optuna's loop ends a trial on Exception and KeyboardInterrupt only
            fail_and_requeue(self.study, trial)
        elif trial.state == FAIL and isinstance(stop, KeyboardInterrupt):
            # Optuna's loop failed it in this process: had another worker ended it first, the
            # loop's tell would have raised that instead of the interrupt.
            requeue_abandoned(self.study, trial)

    def _search_objective(self, trial: optuna.Trial) -> Values:
        """A drawn trial, or a queued evaluation of a later stage (its attributes say which).  A
        draw outside the constraints is recorded with them and trains nothing."""
        self._current = trial._trial_id
        trial.set_user_attr("owner", self.liveness.owner)  # the claim's first write
        width, plan = self.problem.parameters.suggest(trial)
        assessment = self.problem.parameters.assess(width, plan)
        if not assessment.feasible:
            return self._infeasible(trial, assessment)
        key = assessment.key
        trials = self.read()  # after the claim: earlier trials and their seeds are all visible
        attrs = trial.user_attrs  # a queued trial's attributes say what it evaluates
        if (
            is_search_trial(attrs)
            and claimed_slots(trials, self.liveness, before=trial.number) >= self._target
        ):
            trial.set_user_attr("surplus", True)
            raise Surplus(f"trial {trial.number}: the {self._target} search trials are already claimed")
        queued = Record.of(attrs)
        rung, stage = queued.rung, stage_of(attrs)
        reference = key == self.reference(trials)
        if queued.seeds_wanted is not None:
            seeds = list(queued.seeds_wanted)
        else:
            count = self.ladder.reference_seed_count(0) if reference else self.ladder.seed_counts[0]
            seeds = list(self.ladder.seeds(count))
        candidate = self.problem.parameters.candidate(key)
        record = {**candidate_record(self.problem, candidate, rung), "stage": stage, "seeds_wanted": seeds}
        for name, value in {**record, "reference": reference}.items():
            trial.set_user_attr(name, value)
        for name, value in assessment.constraints.items():
            trial.set_constraint(name, value)
        return self.evaluator.evaluate(
            trial, candidate, rung, seeds, trials, stage, prunable=is_search_trial(attrs)
        )

    def _infeasible(self, trial: optuna.Trial, assessment: Assessment) -> Values:
        """Record a draw outside the constraints (its constraint values, reasons and cost where
        it has one) as finished, untrained: the sampler learns from it, nothing is trained."""
        for name, value in assessment.constraints.items():
            trial.set_constraint(name, value)
        trial.set_user_attr("candidate", assessment.key)
        trial.set_user_attr("infeasible", list(assessment.reasons))
        if assessment.candidate is not None:
            trial.set_user_attr("macs", assessment.candidate.macs)
            if assessment.candidate.latency_ms is not None:
                trial.set_user_attr("predicted_latency_ms", assessment.candidate.latency_ms)
        if self.config.objective == "accuracy":
            return 0.0
        return (0.0, cost_objective(self.problem, assessment.candidate))

    # -- requested evaluations ------------------------------------------------------------------
    def run_request(self, request: Request, trials: Trials | None = None) -> optuna.trial.FrozenTrial:
        """Run one requested evaluation as a new trial, created RUNNING (claimed) in storage with
        its record; ``trials``: a recent read, for whether it is the reference.  Returns the
        finished trial."""
        candidate = self.problem.parameters.candidate(request.key)
        reference = request.key == self.reference(trials if trials is not None else self.read())
        record = {
            **candidate_record(self.problem, candidate, request.rung),
            "reference": reference,
            "owner": self.liveness.owner,
        }
        parameters = self.problem.parameters
        trial = claim_request(
            self.study,
            request,
            parameters.params_of(candidate.width_mult, candidate.plan),
            parameters.distributions,
            record,
            self.problem.parameters.assessment(candidate).constraints,
        )
        return self._run_claimed(trial, request)

    def _run_claimed(self, trial: optuna.Trial, request: Request) -> optuna.trial.FrozenTrial:
        """Evaluate a requested trial this process holds RUNNING, recording heartbeats (Study.optimize
        does that for its own trials; these are made by hand)."""
        candidate = self.problem.parameters.candidate(request.key)
        try:
            with get_heartbeat_thread(trial._trial_id, self.storage):
                values = self.evaluator.evaluate(
                    trial, candidate, request.rung, list(request.seeds), self.read(), request.stage
                )
        except RuntimeError:  # a run that failed (a diverged or broken training): recorded, the study goes on
            self.study.tell(trial, state=FAIL, skip_if_finished=True)
        except BaseException:
            # Anything else (an interrupt, a full disk, a bug) stops this worker, but the trial is
            # ended in storage first, as Optuna's own loop does: never left RUNNING until recovery.
            # A requested evaluation is never queued again (liveness.requeue_abandoned): the
            # schedule asks for its missing seeds.
            self.study.tell(trial, state=FAIL, skip_if_finished=True)
            raise
        else:
            # A heartbeat may have failed it meanwhile (the schedule asks again): then that stands.
            self.study.tell(trial, values, skip_if_finished=True)
        return self.study._storage.get_trial(trial._trial_id)
