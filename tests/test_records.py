"""The trial record (ulsam_nas.search.records): written by candidate_record, read through the
typed Record."""

from __future__ import annotations

from tests.studies import small_study
from ulsam_nas.search.config import load_study_config
from ulsam_nas.search.problem import prepare
from ulsam_nas.search.records import Record, candidate_record


def test_the_typed_record_reads_what_the_writer_writes(tmp_path):
    problem = prepare(load_study_config(small_study(tmp_path)))
    candidate = problem.parameters.candidate("0.25|replace@9:ulsam:groups=4")
    written = {**candidate_record(problem, candidate, 0), "seeds_wanted": [3, 4], "stage": "confirm"}
    record = Record.of(written)
    assert (record.candidate, record.plan, record.width_mult) == (candidate.key, candidate.plan, 0.25)
    assert (record.macs, record.params, record.groups, record.rung) == (
        candidate.macs,
        candidate.params,
        4,
        0,
    )
    assert (record.fidelity_epochs, record.fidelity_images) == (1, 256)
    assert record.costed and record.where is None and record.shown_plan == candidate.plan
    assert record.seeds_wanted == (3, 4) and not record.over_budget and record.duplicate_of is None


def test_a_trial_without_attributes_reads_as_untrained():
    record = Record.of({})
    assert not record.costed and record.plan == "" and record.accuracy is None and record.rung == 0
    assert record.seeds == () and record.trained_steps == 0 and record.seeds_wanted is None
