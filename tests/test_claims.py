"""Two workers that draw the same configuration at once train its seeds once: the later trial
waits for the earlier one to write what it evaluates, then for its seeds."""

from __future__ import annotations

import datetime
from types import SimpleNamespace
from typing import Any

import optuna
import pytest

from ulsam_nas.search import evaluate
from ulsam_nas.search.evaluate import Evaluator
from ulsam_nas.search.liveness import Liveness
from ulsam_nas.search.schedule import Fidelity, Ladder

LADDER = Ladder((Fidelity(2, 512),), (2,))
FIDELITY = {"epochs": 2, "images": 512}
RUNNING, COMPLETE = optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.COMPLETE


def frozen(number: int, state: optuna.trial.TrialState, attrs: dict[str, Any], age_s: float = 0.0):
    started = datetime.datetime.now() - datetime.timedelta(seconds=age_s)
    return optuna.trial.FrozenTrial(
        number=number,
        state=state,
        value=None,
        values=None,
        datetime_start=started,
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs={"owner": {"host": "elsewhere", "pid": 1}, **attrs},
        system_attrs={},
        intermediate_values={},
        trial_id=number,
    )


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch):
    monkeypatch.setattr(evaluate, "WAIT_POLL_SECONDS", 0.0)
    monkeypatch.setattr(evaluate, "DECLARE_POLL_SECONDS", 0.0)


def evaluator(reads: list[list[optuna.trial.FrozenTrial]]) -> tuple[Evaluator, list[int]]:
    """An evaluator whose reads return ``reads`` in turn (the last one from then on)."""
    calls = [0]

    def read():
        calls[0] += 1
        return reads[min(calls[0], len(reads)) - 1]

    problem = SimpleNamespace(config=SimpleNamespace(ladder=LADDER))
    return Evaluator(problem, read, Liveness(host="here", pid=2)), calls  # type: ignore[arg-type]


def test_a_later_trial_waits_for_an_earlier_one_still_writing_its_record_then_reuses_its_seeds():
    record = {"candidate": "k", "fidelity": FIDELITY, "seeds_wanted": [0, 1]}
    undeclared = frozen(0, RUNNING, {})
    training = frozen(0, RUNNING, record)
    done = frozen(0, COMPLETE, {**record, "seeds": [0, 1], "accuracies": [0.5, 0.6]})
    judge, calls = evaluator([[training, frozen(1, RUNNING, {})], [done]])
    known, _, _ = judge.known_seeds([undeclared, frozen(1, RUNNING, {})], "k", 0, [0, 1], current=1)
    assert known == {0: (0.5, 0), 1: (0.6, 0)}
    assert calls[0] == 2


def test_an_earlier_trial_of_another_configuration_is_not_waited_for_once_it_has_said_so():
    other = frozen(0, RUNNING, {"candidate": "other", "fidelity": FIDELITY, "seeds_wanted": [0, 1]})
    judge, calls = evaluator([[other]])
    known, _, _ = judge.known_seeds([frozen(0, RUNNING, {})], "k", 0, [0, 1], current=1)
    assert known == {} and calls[0] == 1


@pytest.mark.parametrize(
    "attrs", [{"infeasible": ["over budget"]}, {"surplus": True}], ids=["infeasible", "surplus"]
)
def test_an_untrained_earlier_trial_needs_no_record(attrs):
    judge, calls = evaluator([])
    known, _, _ = judge.known_seeds([frozen(0, RUNNING, attrs)], "k", 0, [0, 1], current=1)
    assert known == {} and calls[0] == 0


def test_an_undeclared_trial_older_than_the_declare_wait_is_ignored_and_a_later_one_never_waited_for():
    stale = frozen(0, RUNNING, {}, age_s=evaluate.DECLARE_WAIT_SECONDS + 1)
    judge, calls = evaluator([])
    known, _, _ = judge.known_seeds([stale, frozen(2, RUNNING, {})], "k", 0, [0, 1], current=1)
    assert known == {} and calls[0] == 0
