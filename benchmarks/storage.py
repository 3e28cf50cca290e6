"""How much storage traffic does one trial make?  Runs ``ulsam-nas search`` in this process on
generated data (one worker, journal file) and counts every call into the storage: full reads of
the study's trials (``get_all_trials``), attribute writes (``set_trial_user_attr``) and all other
writes, per finished trial, split by who made them — ulsam-nas itself, Optuna's sampler, or
Optuna's own ask/tell bookkeeping.

Two studies: the search stage alone (``--no-schedule``, so every trial is a sampler's trial)
and the same with a fidelity schedule (rung 1 and confirmation trials too), each run with N
and 2N search trials: the difference per extra trained trial is what one trial costs.

    python benchmarks/storage.py [--trials 8] [--label after]

Writes its section of reports/benchmarks.md (one row per study and ``--label``; rows with
other labels are kept, so a before/after pair can be shown).
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import traceback
from pathlib import Path

import optuna
from _report import REPORT, write_section

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.test_search import SPACE  # the small space the search tests use

READS = ("get_all_trials",)
WRITES = (
    "set_trial_user_attr",
    "set_trial_system_attr",
    "set_trial_param",
    "set_trial_state_values",
    "set_trial_intermediate_value",
    "create_new_trial",
    "set_study_user_attr",
    "set_study_system_attr",
)

SCHEDULE = """
schedule:
  rungs: [{epochs: 2, images: 256, seeds: 2}]
  confirm: {top_k: 2, seeds: 5}
  reference_seeds: 2
"""


# Optuna calls that ulsam-nas makes on its own account (a read, an attribute, a claim); the rest
# (optimize, ask, tell, suggest, report) are Optuna's bookkeeping of a trial.
OWN_CALLS = {
    "get_trials",
    "_get_trials",
    "trials",
    "best_trial",
    "set_user_attr",
    "set_constraint",
    "enqueue_trial",
    "add_trial",
    "create_study",
    "load_study",
    "user_attrs",
}


def caller_kind() -> str:
    """Who made the storage call on the stack: "sampler", "ulsam-nas" or "optuna"."""
    frames = traceback.extract_stack()[:-2]
    ours = [i for i, f in enumerate(frames) if "/ulsam_nas/" in f.filename]
    if not ours:
        return "optuna"
    inner = frames[ours[-1] + 1 :]  # from the call ulsam-nas made down to the storage
    if any("/optuna/samplers/" in f.filename for f in inner):
        return "sampler"
    direct = inner[0] if inner else None
    if direct is None or "/optuna/storages/" in direct.filename or direct.name in OWN_CALLS:
        return "ulsam-nas"
    return "optuna"


class Counter:
    def __init__(self) -> None:
        self.calls: collections.Counter[tuple[str, str]] = collections.Counter()

    def install(self, storage_class: type) -> None:
        for name in READS + WRITES:
            original = getattr(storage_class, name)

            def counted(*args, _original=original, _name=name, **kwargs):  # type: ignore[no-untyped-def]
                self.calls[(_name, caller_kind())] += 1
                return _original(*args, **kwargs)

            setattr(storage_class, name, counted)

    def total(self, names: tuple[str, ...], kind: str | None = None) -> int:
        return sum(n for (name, who), n in self.calls.items() if name in names and kind in (None, who))


def run(folder: Path, trials: int, schedule: bool) -> tuple[Counter, int]:
    from ulsam_nas.cli import main as cli_main

    (folder / "space.yaml").write_text(SPACE)
    study = folder / "study.yaml"
    study.write_text(
        "name: traffic\nspace: space.yaml\nbudget: {mmacs: 12.5}\n"
        f"trials: {trials}\nproxy: {{data: synthetic, train_images: 128, val_images: 64, epochs: 1, "
        "batch_size: 64}\n" + (SCHEDULE if schedule else "")
    )
    counter = Counter()
    counter.install(optuna.storages.JournalStorage)
    args = ["search", str(study), "--quiet"] + ([] if schedule else ["--no-schedule"])
    code = cli_main(args)
    assert code == 0, f"search exited {code}"
    backend = optuna.storages.journal.JournalFileBackend(str(folder / "traffic.journal"))
    loaded = optuna.load_study(study_name="traffic", storage=optuna.storages.JournalStorage(backend))
    finished = sum(
        t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        and not t.user_attrs.get("over_budget")
        for t in loaded.get_trials(deepcopy=False)
    )
    return counter, finished


def measure(trials: int, schedule: bool) -> tuple[Counter, int]:
    originals = {n: getattr(optuna.storages.JournalStorage, n) for n in READS + WRITES}
    try:
        with tempfile.TemporaryDirectory() as folder:
            return run(Path(folder), trials, schedule)
    finally:
        for name, original in originals.items():
            setattr(optuna.storages.JournalStorage, name, original)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--label", default="after", help="the revision's name in the table")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    rows: dict[str, str] = {}
    for schedule in (False, True):
        # Two runs, N and 2N search trials: the difference per extra trained trial is what one
        # trial costs, without the study's set-up and the last read.
        (small, n_small), (large, n_large) = (measure(n, schedule) for n in (args.trials, 2 * args.trials))
        study = "search + schedule" if schedule else "search stage only"

        def per_trial(
            names: tuple[str, ...], kind: str | None = None, runs=(small, large, n_small, n_large)
        ) -> str:
            return _marginal(*runs, names, kind)

        rows[f"{args.label}|{study}"] = (
            f"| {args.label} | {study} | {n_small} → {n_large} | {per_trial(READS, 'ulsam-nas')} | "
            f"{per_trial(READS, 'sampler')} | {per_trial(READS, 'optuna')} | "
            f"{per_trial(('set_trial_user_attr',))} | {per_trial(WRITES)} |"
        )
    kept = _existing_rows(exclude=args.label)
    header = [
        f"One worker, journal storage, generated data; each study run with {args.trials} and "
        f"{2 * args.trials} search trials, and the difference in storage calls divided by the "
        "difference in trained trials (search and, with the schedule, rung-1 and confirmation "
        "trials): what one more trial costs. Reads are full scans of the study's trials "
        "(`get_all_trials`); the Optuna column is ask/tell bookkeeping.",
        "",
        "| revision | study | trained trials | trial reads by ulsam-nas | by the sampler | by Optuna | "
        "attribute writes | all writes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    body = "\n".join([*header, *kept, *rows.values()])
    path = write_section("storage", body)
    print(body)
    print(f"wrote {path}")


def _marginal(
    small: Counter, large: Counter, n_small: int, n_large: int, names: tuple[str, ...], kind: str | None
) -> str:
    """Storage calls per extra trained trial between two runs."""
    extra = large.total(names, kind) - small.total(names, kind)
    return f"{extra / (n_large - n_small):.1f}"


def _existing_rows(exclude: str) -> list[str]:
    """Rows of the section written under other labels (e.g. "before")."""
    if not REPORT.exists():
        return []
    text = REPORT.read_text()
    start, end = text.find("<!-- storage:start -->"), text.find("<!-- storage:end -->")
    if start < 0 or end < 0:
        return []
    return [
        line
        for line in text[start:end].splitlines()
        if line.startswith("| ")
        and not line.startswith("| revision")
        and line.split("|")[1].strip() != exclude
    ]


if __name__ == "__main__":
    main()
