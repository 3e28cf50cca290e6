"""Many workers, dead workers and interrupted workers: real processes on one study, on the default
journal file and on PostgreSQL (when ULSAM_NAS_TEST_PG_URL names a server; .ci/run starts one
and sets REQUIRE_PG=1, so there these tests fail rather than skip)."""

from __future__ import annotations

import os

import optuna
import pytest

from tests.fault_scenarios import (
    Outcome,
    audit,
    run_interrupt,
    run_kill,
    run_kill_reference_request,
    run_workers,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pg_url() -> str:
    url = os.environ.get("ULSAM_NAS_TEST_PG_URL")
    required = os.environ.get("REQUIRE_PG") == "1"

    def missing(reason: str) -> None:
        if required:
            pytest.fail(reason + " and REQUIRE_PG=1")
        pytest.skip(reason)

    if not url:
        missing("no PostgreSQL server: set ULSAM_NAS_TEST_PG_URL (.ci/postgres.sh starts one)")
    try:
        import sqlalchemy

        sqlalchemy.create_engine(url, connect_args={"connect_timeout": 3}).connect().close()
    except Exception as error:  # the driver is missing or the server does not answer
        missing(f"PostgreSQL at {url} is unusable: {type(error).__name__}")
    return url


def assert_whole(outcome, codes):
    assert outcome.exit_codes == codes, outcome
    assert outcome.finished == outcome.requested, outcome
    assert outcome.trained_twice == 0, outcome
    assert outcome.lost == 0, outcome


def test_three_workers_finish_exactly_the_target_on_the_journal(tmp_path):
    assert_whole(run_workers(tmp_path, str(tmp_path / "s.journal"), workers=3, trials=6), [0, 0, 0])


def test_three_workers_finish_exactly_the_target_on_postgresql(tmp_path, pg_url):
    assert_whole(run_workers(tmp_path, pg_url, workers=3, trials=6, kind="postgresql"), [0, 0, 0])


def test_a_killed_worker_s_trial_is_failed_and_retried_on_the_journal(tmp_path):
    outcome = run_kill(tmp_path, str(tmp_path / "s.journal"), trials=6)
    assert_whole(outcome, [-9, 0, 0])
    assert outcome.failed >= 1 and outcome.recovery_seconds is not None


@pytest.mark.parametrize("stage", ["search", "later"])
def test_a_killed_worker_on_another_host_is_recovered_by_heartbeat_on_postgresql(tmp_path, pg_url, stage):
    outcome = run_kill(tmp_path, pg_url, trials=6, kind="postgresql", remote=True, stage=stage)
    assert_whole(outcome, [-9, 0, 0])
    # Stale once the last heartbeat (up to 1 s before the kill) is older than the 3 s grace period.
    assert outcome.recovery_seconds is not None and outcome.recovery_seconds >= 3 - 1


def test_a_worker_killed_in_a_later_stage_on_the_journal_is_recovered(tmp_path):
    assert_whole(run_kill(tmp_path, str(tmp_path / "s.journal"), trials=6, stage="later"), [-9, 0, 0])


def test_a_worker_killed_training_the_reference_s_requested_seeds_is_recovered(tmp_path):
    outcome = run_kill_reference_request(tmp_path, str(tmp_path / "s.journal"))
    assert_whole(outcome, [0, -9, 0])


def test_ctrl_c_then_the_same_command_resumes_to_the_target(tmp_path):
    outcome = run_interrupt(tmp_path, str(tmp_path / "s.journal"), trials=4)
    assert_whole(outcome, [130, 0])


def test_a_password_never_reaches_the_output_or_the_report(tmp_path, pg_url, capfd):
    from tests.fault_scenarios import write_study
    from ulsam_nas.cli import main

    # The throwaway server trusts loopback, so any password connects; none may be shown.
    url = pg_url.replace("postgres@", "postgres:s3cr3t-pw@")
    study = write_study(tmp_path, f"pw-{os.getpid()}", trials=2, epochs=1)
    assert main(["search", str(study), "--storage", url, "--quiet"]) == 0
    assert main(["best", str(study), "--storage", url]) == 0
    assert main(["report", str(study), "--storage", url, "--out", str(tmp_path / "report")]) == 0
    out, err = capfd.readouterr()
    assert "s3cr3t" not in out + err and "postgres:***@" in err
    for path in (tmp_path / "report").iterdir():
        if path.suffix != ".png":
            assert "s3cr3t" not in path.read_text(), path.name


def test_the_audit_counts_a_failed_trial_lost_unless_the_same_evaluation_finished_later(tmp_path):
    storage = str(tmp_path / "audit.journal")
    backend = optuna.storages.journal.JournalFileBackend(storage)
    study = optuna.create_study(study_name="a", storage=optuna.storages.JournalStorage(backend))
    distribution = optuna.distributions.CategoricalDistribution(["0.25|", "0.5|"])

    def add(state, candidate, stage="search", rung=0):
        study.add_trial(
            optuna.trial.create_trial(
                state=state,
                values=[0.5] if state == optuna.trial.TrialState.COMPLETE else None,
                params={"candidate": candidate},
                distributions={"candidate": distribution},
                user_attrs={"candidate": candidate, "stage": stage, "rung": rung},
            )
        )

    fail, complete = optuna.trial.TrialState.FAIL, optuna.trial.TrialState.COMPLETE
    add(fail, "0.25|")  # retried below by the same evaluation: not lost
    add(fail, "0.5|", "rung 1", 1)  # only the search stage evaluates 0.5 again: lost
    add(complete, "0.25|")
    add(complete, "0.5|")
    outcome = audit(storage, "a", Outcome("audit", "journal", 2))
    assert outcome.failed == 2 and outcome.lost == 1
