"""Study files and the budget-constrained Optuna search.

Design (Optuna 5 cannot prune multi-objective studies):

* The space is enumerated exhaustively from the closed form before anything trains, so the
  sampler draws only candidates inside the budget: one categorical parameter ``candidate``
  (``"α|plan"``) over the feasible set, and every trial still records ``trial.set_constraint``
  (≤ 0 when feasible).  Plain backbones over the budget are recorded once as COMPLETE trials
  with accuracy 0, ``over_budget: true`` and ``trained_steps: 0``, so reports can say so.
* ``objective: accuracy`` (default) is single-objective and may prune on per-epoch validation
  accuracy (``pruner: median``); ``objective: accuracy+macs`` is multi-objective (a Pareto front
  of accuracy against exact MACs) and never prunes.
* Storage: Optuna's JournalStorage in a local file next to the study file by default (no
  server, safe for several processes on one machine, documented for NFS; SQLite locks under
  parallel writers).  Any Optuna URL works via ``--storage``; RDB storages get heartbeats.
* Every accuracy is a mean over paired seeds (``proxy.seeds``; the same seeds, split and batch
  order for every candidate) with its standard error.  A seed already trained for a candidate at
  a fidelity is never trained again: a trial reuses it and trains only the missing seeds
  (``duplicate_of`` when it trains none).  Each trial records its owner (host, pid); at start,
  RUNNING trials owned by a dead process on this host are failed and their candidate re-queued.
* With a ``schedule`` the search stage is the cheapest rung of a fidelity schedule; the later
  rungs (successive halving) and the confirmation of the top k with ≥ 5 seeds run after it, as
  trials with ``stage``/``rung`` attributes (see ``schedule.py``).
"""

from __future__ import annotations

import math
import os
import socket
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import optuna
from optuna.storages._heartbeat import get_heartbeat_thread, is_heartbeat_enabled
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ulsam_nas.backbones.network import backbone_table, create_network, resolve_plan
from ulsam_nas.backbones.plan import parse_plan, plan_text
from ulsam_nas.errors import InvalidInput
from ulsam_nas.search.data import ImageData, load_data
from ulsam_nas.search.noise import TEST_NAME, summarize
from ulsam_nas.search.schedule import Costs, Ladder, Request, Results, ScheduleConfig, select, tie_sentence
from ulsam_nas.search.space import (
    Candidate,
    SearchSpace,
    enumerate_candidates,
    load_space,
    one_line,
    read_yaml,
)
from ulsam_nas.search.train import TrainSettings, measure_latency_ms, proxy_train, resolve_device


class Surplus(RuntimeError):
    """A search trial started after the target was already claimed by earlier live trials (two
    workers raced for the last slot): it is failed untrained, marked ``surplus``."""


MAX_WAIT_SECONDS = 7200  # waiting for another worker's training of the same candidate
SCHEMA_ATTEMPTS = 5  # opening a database storage while other workers create its tables
SET_UP_WAIT_SECONDS = 60  # waiting for the worker that created a study to finish setting it up
MAX_CONSECUTIVE_FAILURES = 3  # then stop: the target is not reached and the command exits 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Budget(_Strict):
    mmacs: float | None = Field(default=None, gt=0)
    mparams: float | None = Field(default=None, gt=0)
    convention: Literal["exact", "paper"] = "exact"
    # Measured, not closed-form: checked on the built model before any training step.
    latency_ms: float | None = Field(default=None, gt=0)


class Proxy(_Strict):
    data: str = "fashion-mnist"
    train_images: int | None = Field(default=5000, ge=1)
    val_images: int | None = Field(default=2000, ge=1)
    resolution: int = Field(default=32, ge=8)
    epochs: int = Field(default=2, ge=1)
    batch_size: int = Field(default=128, ge=1)
    lr: float = Field(default=0.05, gt=0)
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    seed: int = 0
    seeds: int = Field(default=1, ge=1)  # paired seeds per candidate: seed, seed + 1, ...


class Sampler(_Strict):
    # grid: every feasible candidate once, in random order (ablations over small spaces)
    name: Literal["tpe", "random", "nsga2", "grid"] = "tpe"
    seed: int = 0


class StudyConfig(_Strict):
    """The schema of a studies/*.yaml file; paths are relative to the file."""

    name: str = Field(min_length=1)
    space: str
    budget: Budget = Budget()
    objective: Literal["accuracy", "accuracy+macs"] = "accuracy"
    sampler: Sampler = Sampler()
    pruner: Literal["none", "median", "successive_halving", "hyperband"] = "none"
    proxy: Proxy = Proxy()
    storage: str | None = None
    schedule: ScheduleConfig | None = None
    trials: int = Field(default=24, ge=1)
    heartbeat_interval: int = Field(default=60, ge=1)
    grace_period: int = Field(default=180, ge=1)

    @model_validator(mode="after")
    def _one_way_to_stop_early(self) -> StudyConfig:
        if self.schedule is not None and self.pruner != "none":
            raise ValueError(
                f"pruner {self.pruner!r} and a schedule are alternatives: the schedule promotes "
                "whole candidates by their mean over seeds; set pruner: none"
            )
        return self

    @property
    def ladder(self) -> Ladder:
        proxy = self.proxy
        return Ladder.build(
            proxy.epochs,
            proxy.train_images,
            proxy.seeds,
            proxy.seed,
            self.schedule,
            self.objective != "accuracy",
        )


def load_study_config(path: str | Path, overrides: dict[str, Any] | None = None) -> StudyConfig:
    """Read a study file, apply command-line overrides (dotted keys, e.g. "proxy.epochs"), and
    resolve the space and storage paths against the file's folder."""
    path = Path(path)
    document = read_yaml(path)
    if not isinstance(document, dict):
        raise InvalidInput(f"{path}: expected a mapping of keys, got {type(document).__name__}")
    base = path.resolve().parent
    proxy = document.get("proxy")
    if isinstance(proxy, dict) and isinstance(proxy.get("data"), str):
        given = Path(proxy["data"])
        if proxy["data"] not in ("synthetic", "fashion-mnist") and not given.is_absolute():
            proxy["data"] = str(base / given)  # a path in the file is relative to the file
    for dotted, value in (overrides or {}).items():
        if value is None and dotted != "schedule":  # None: not given, except "no schedule"
            continue
        target = document
        *parents, leaf = dotted.split(".")
        for parent in parents:
            if target.get(parent) is None:
                target[parent] = {}
            if not isinstance(target[parent], dict):
                raise InvalidInput(f"{path}: {parent} must be a mapping of keys, got {target[parent]!r}")
            target = target[parent]
        target[leaf] = value
    try:
        config = StudyConfig.model_validate(document)
    except ValidationError as error:
        raise InvalidInput(one_line(error, str(path))) from None
    config.space = str((base / config.space).resolve())
    if config.storage is None:
        config.storage = str(base / f"{config.name}.journal")
    elif "://" not in config.storage:
        config.storage = str((base / config.storage).resolve())
    return config


def open_storage(url: str, config: StudyConfig) -> Any:
    """JournalStorage for a file path; RDBStorage (with heartbeats) for a database URL."""
    if "://" not in url:
        from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

        Path(url).parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(url, lock_obj=JournalFileOpenLock(url)))
    for attempt in range(SCHEMA_ATTEMPTS):
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 5; we rely on them
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return _rdb_storage(url, config)
        except Exception as error:  # SQLAlchemy's messages can echo the URL: say which part failed
            # Workers starting together on an empty database race to create Optuna's tables: the
            # losers see an IntegrityError and find the tables made on the next try.
            if type(error).__name__ != "IntegrityError" or attempt == SCHEMA_ATTEMPTS - 1:
                raise InvalidInput(f"cannot open storage {redact(url)}: {type(error).__name__}") from None
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def _rdb_storage(url: str, config: StudyConfig) -> Any:
    """A database storage whose heartbeats fail a dead worker's trial and retry its params."""
    return optuna.storages.RDBStorage(
        url,
        engine_kwargs={"pool_pre_ping": True},
        heartbeat_interval=config.heartbeat_interval,
        grace_period=config.grace_period,
        heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=2),
    )


def redact(url: str) -> str:
    """A storage URL with any password replaced, for messages and reports."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url


@dataclass
class Prepared:
    config: StudyConfig
    space: SearchSpace
    data: ImageData
    candidates: list[Candidate]
    feasible: list[Candidate]
    _data_by_images: dict[int | None, ImageData] = field(default_factory=dict)

    def data_for(self, rung: int) -> ImageData:
        """The training data of a rung (its image count; the validation images never change)."""
        images = self.config.ladder.fidelities[rung].images
        if images == self.config.proxy.train_images:
            return self.data
        if images not in self._data_by_images:
            proxy = self.config.proxy
            self._data_by_images[images] = load_data(
                proxy.data, images, proxy.val_images, proxy.resolution, proxy.seed
            )
        return self._data_by_images[images]

    @property
    def budget_macs(self) -> float:
        return self.config.budget.mmacs * 1e6 if self.config.budget.mmacs else math.inf

    @property
    def budget_params(self) -> float:
        return self.config.budget.mparams * 1e6 if self.config.budget.mparams else math.inf

    def within(self, candidate: Candidate) -> bool:
        return candidate.macs <= self.budget_macs and candidate.params <= self.budget_params

    @property
    def reference(self) -> str | None:
        """The vanilla reference whose seed spread states the study's noise: the widest plain
        backbone inside the budget (None when every plain backbone is over it)."""
        plain = [c for c in self.feasible if c.plan == ""]
        return max(plain, key=lambda c: c.width_mult).key if plain else None


def prepare(config: StudyConfig) -> Prepared:
    """Load the space and the data, enumerate every candidate and keep those inside the budget."""
    space = load_space(config.space)
    proxy = config.proxy
    data = load_data(proxy.data, proxy.train_images, proxy.val_images, proxy.resolution, proxy.seed)
    candidates = enumerate_candidates(
        space, data.resolution, data.num_classes, data.in_channels, config.budget.convention
    )
    prepared = Prepared(config, space, data, candidates, [])
    prepared.feasible = [c for c in candidates if prepared.within(c)]
    if not prepared.feasible:
        cheapest = min(candidates, key=lambda c: (c.macs, c.params))
        given = [
            f"{v:g} {unit}"
            for v, unit in ((config.budget.mmacs, "MMACs"), (config.budget.mparams, "MParams"))
            if v is not None
        ]
        raise InvalidInput(
            f"the budget ({', '.join(given)}) is below the cheapest configuration in the space: "
            f"{cheapest.macs / 1e6:.3f} MMACs, {cheapest.params / 1e6:.3f} MParams "
            f"(α {cheapest.width_mult:g}, plan '{cheapest.plan}')"
        )
    return prepared


def _identity(config: StudyConfig) -> dict[str, Any]:
    """What must not change between runs of one study: the space, budget and proxy fidelity."""
    return {
        "space": Path(config.space).read_text(encoding="utf-8"),
        "budget": config.budget.model_dump(),
        "objective": config.objective,
        # More seeds or another schedule may be added to a study later: results are kept per
        # (candidate, fidelity, seed), so nothing already trained is invalidated.
        "proxy": config.proxy.model_dump(exclude={"device", "seeds"}),
    }


def groups_of(plan: str) -> int | None:
    """The group count g shared by every module of a plan that has one (None: none has, or
    they differ)."""
    groups = {p.config.get("groups") for p in parse_plan(plan) if "groups" in p.config}
    return groups.pop() if len(groups) == 1 else None


def _rung_of(attrs: dict[str, Any], ladder: Ladder) -> int | None:
    """Which rung of ``ladder`` a trial's fidelity is (None: none of them)."""
    fidelity = attrs.get("fidelity")
    if fidelity is None and attrs.get("epochs") == ladder.fidelities[0].epochs:
        return 0  # a trial from before schedules existed: the study's own proxy fidelity
    if not isinstance(fidelity, dict):
        return None
    for rung, candidate in enumerate(ladder.fidelities):
        if (candidate.epochs, candidate.images) == (fidelity.get("epochs"), fidelity.get("images")):
            return rung
    return None


def _per_seed(attrs: dict[str, Any]) -> dict[int, float]:
    """A finished trial's ``seed -> accuracy`` (empty for an untrained, over-budget one)."""
    if attrs.get("over_budget") or not attrs.get("seeds") or attrs.get("accuracies") is None:
        return {}
    return {int(s): float(a) for s, a in zip(attrs["seeds"], attrs["accuracies"], strict=True)}


def collect_results(study: optuna.Study, ladder: Ladder) -> tuple[Results, dict[str, Costs]]:
    """Per rung, every candidate's per-seed accuracies from the study's finished trials, and
    each candidate's exact cost (and the first measured latency)."""
    results: Results = {}
    costs: dict[str, Costs] = {}
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        attrs = trial.user_attrs
        rung = _rung_of(attrs, ladder)
        per_seed = _per_seed(attrs)
        if rung is None or not per_seed:
            continue
        key = attrs["candidate"]
        found = results.setdefault(rung, {}).setdefault(key, {})
        for seed, accuracy in per_seed.items():
            found.setdefault(seed, accuracy)
        if key not in costs or costs[key].latency_ms is None:
            costs[key] = Costs(attrs["macs"], attrs["params"], attrs.get("latency_ms"))
    return results, costs


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Search:
    """One process's view of a study: create or resume it, then run trials until the target."""

    def __init__(self, prepared: Prepared) -> None:
        self.prepared = prepared
        self.config = prepared.config
        self.by_key = {c.key: c for c in prepared.candidates}
        self.ladder = self.config.ladder
        self._distribution = optuna.distributions.CategoricalDistribution([c.key for c in prepared.feasible])
        # Recorded as each trial's owner; set ULSAM_NAS_HOST where machines share a host name.
        self.host = os.environ.get("ULSAM_NAS_HOST") or socket.gethostname()
        storage_url = self.config.storage
        assert storage_url is not None
        self.storage = open_storage(storage_url, self.config)
        self.study = self._create_or_load()
        self._target = self.config.trials
        self._current: int | None = None  # the search trial this process is running

    # -- study set-up --------------------------------------------------------------------------
    def _sampler(self) -> optuna.samplers.BaseSampler:
        seed = self.config.sampler.seed
        if self.config.sampler.name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if self.config.sampler.name == "grid":
            return optuna.samplers.GridSampler(
                {"candidate": [c.key for c in self.prepared.feasible]}, seed=seed
            )
        if self.config.sampler.name == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed, population_size=8)
        return optuna.samplers.TPESampler(seed=seed)

    def _pruner(self) -> optuna.pruners.BasePruner:
        if self.config.objective != "accuracy":
            return optuna.pruners.NopPruner()  # Optuna cannot prune multi-objective studies
        if self.config.pruner == "median":
            return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1)
        if self.config.pruner == "successive_halving":
            return optuna.pruners.SuccessiveHalvingPruner(min_resource=1)
        if self.config.pruner == "hyperband":
            return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=self.config.proxy.epochs)
        return optuna.pruners.NopPruner()

    def _create_or_load(self) -> optuna.Study:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        directions: list[Any] = (
            ["maximize"] if self.config.objective == "accuracy" else ["maximize", "minimize"]
        )
        identity = _identity(self.config)
        try:
            # Creating is atomic in every storage: of several workers starting together, exactly
            # one creates the study and its baselines; the others wait until it is ready.
            study = optuna.create_study(
                study_name=self.config.name,
                storage=self.storage,
                directions=directions,
                sampler=self._sampler(),
                pruner=self._pruner(),
            )
        except optuna.exceptions.DuplicatedStudyError:
            study = optuna.load_study(
                study_name=self.config.name,
                storage=self.storage,
                sampler=self._sampler(),
                pruner=self._pruner(),
            )
        else:
            self._set_up(study)
            study.set_user_attr("identity", identity)  # last: the study is ready
            return study
        deadline = time.monotonic() + SET_UP_WAIT_SECONDS
        while "identity" not in study.user_attrs and time.monotonic() < deadline:
            time.sleep(0.5)
        stored = study.user_attrs.get("identity")
        if stored is None:
            raise InvalidInput(
                f"study {self.config.name!r} exists but was never set up (did the worker creating it "
                "stop?); use another --study-name"
            )
        if stored != identity:
            changed = [k for k in identity if stored.get(k) != identity[k]]
            raise InvalidInput(
                f"study {self.config.name!r} exists with a different "
                f"{', '.join(changed) or 'configuration'}; use another --study-name or the "
                "original settings"
            )
        # The latest run's seeds and schedule are what ``best`` and reports read.
        study.set_user_attr("config", self.config.model_dump())
        return study

    def _set_up(self, study: optuna.Study) -> None:
        """A new study's attributes (what reports read) and its baselines."""
        study.set_user_attr("config", self.config.model_dump())
        study.set_user_attr("data", self.prepared.data.describe())
        data = self.prepared.data
        study.set_user_attr(
            "network",
            {
                "resolution": data.resolution,
                "num_classes": data.num_classes,
                "in_channels": data.in_channels,
                "stem": self.prepared.space.stem,
            },
        )
        study.set_user_attr("reference", self.prepared.reference)
        study.set_user_attr("feasible", len(self.prepared.feasible))
        study.set_user_attr("candidates", len(self.prepared.candidates))
        self._enqueue_baselines(study)

    def _enqueue_baselines(self, study: optuna.Study) -> None:
        """The plain backbone at every width and the paper's placement, once, first; plain
        backbones over the budget are recorded untrained."""
        space, data = self.prepared.space, self.prepared.data
        wanted = []
        for width in space.width_mults:
            wanted.append(self.by_key[Candidate.key_of(width, "")])
            if space.paper_plan:
                table = backbone_table(
                    space.backbone, width, data.resolution, data.num_classes, data.in_channels, space.stem
                )
                try:
                    plan = plan_text(resolve_plan(table, space.paper_plan))
                except InvalidInput:
                    continue  # e.g. its groups do not divide the channels at this width
                if Candidate.key_of(width, plan) in self.by_key:
                    wanted.append(self.by_key[Candidate.key_of(width, plan)])
        for candidate in wanted:
            if self.prepared.within(candidate):
                if self.config.sampler.name == "grid":
                    continue  # the grid visits every feasible candidate; a queued copy would repeat one
                study.enqueue_trial(
                    {"candidate": candidate.key}, user_attrs={"baseline": True}, skip_if_exists=True
                )
            elif candidate.plan == "":
                self._record_over_budget(study, candidate)

    def _record_over_budget(self, study: optuna.Study, candidate: Candidate) -> None:
        values = [0.0] if self.config.objective == "accuracy" else [0.0, float(candidate.macs)]
        attrs = {
            **self._attrs(candidate),
            "stage": "search",
            "accuracy": 0.0,
            "over_budget": True,
            "trained_steps": 0,
            "baseline": True,
            "train_seconds": 0.0,
            "latency_ms": None,
        }
        violation = {"macs": candidate.macs - self.prepared.budget_macs}
        if self.config.budget.mparams:
            violation["params"] = candidate.params - self.prepared.budget_params
        study.add_trial(optuna.trial.create_trial(values=values, user_attrs=attrs, constraints=violation))

    # -- trials -------------------------------------------------------------------------------
    def _attrs(self, candidate: Candidate, rung: int = 0) -> dict[str, Any]:
        fidelity = self.ladder.fidelities[rung]
        return {
            "candidate": candidate.key,
            "plan": candidate.plan,
            "width_mult": candidate.width_mult,
            "backbone": self.prepared.space.backbone,
            "groups": groups_of(candidate.plan),
            "modules": candidate.modules,
            "macs": candidate.macs,
            "params": candidate.params,
            "macs_convention": self.config.budget.convention,
            "rung": rung,
            "fidelity": {"epochs": fidelity.epochs, "images": fidelity.images},
            "epochs": fidelity.epochs,
            "images": len(self.prepared.data_for(rung).train_labels),
            "seed": self.config.proxy.seed,
            "duplicate_of": None,
            "over_budget": False,
        }

    def _values(self, accuracy: float, candidate: Candidate) -> float | tuple[float, float]:
        return accuracy if self.config.objective == "accuracy" else (accuracy, float(candidate.macs))

    def _same_evaluation(self, trial: optuna.trial.FrozenTrial, key: str, rung: int) -> bool:
        attrs = trial.user_attrs
        return attrs.get("candidate") == key and _rung_of(attrs, self.ladder) == rung

    def _known_seeds(
        self, key: str, rung: int, seeds: list[int], current: int
    ) -> dict[int, tuple[float, int]]:
        """``seed -> (accuracy, trial number)`` already trained for this candidate at this rung's
        fidelity.  If an earlier, live trial is training one of ``seeds`` now, wait for it (only
        earlier ones, so two workers never wait on each other)."""
        deadline = time.monotonic() + MAX_WAIT_SECONDS
        while True:
            known: dict[int, tuple[float, int]] = {}
            running = False
            for trial in self.study.get_trials(deepcopy=False):
                if trial.number == current or not self._same_evaluation(trial, key, rung):
                    continue
                attrs = trial.user_attrs
                if trial.state == optuna.trial.TrialState.COMPLETE:
                    for seed, accuracy in _per_seed(attrs).items():
                        known.setdefault(seed, (accuracy, trial.number))
                elif (
                    trial.state == optuna.trial.TrialState.RUNNING
                    and trial.number < current
                    and set(attrs.get("seeds_wanted", [])) & set(seeds)
                    and self._owner_alive(trial)
                ):
                    running = True
            if all(s in known for s in seeds) or not running or time.monotonic() > deadline:
                return known
            time.sleep(2.0)

    def _owner_alive(self, trial: optuna.trial.FrozenTrial) -> bool:
        """Whether a RUNNING trial's worker is alive: a process on this host is checked by pid;
        another host's worker is taken as alive (on a database storage its heartbeat fails the
        trial once it stops, see ``_fail_dead``)."""
        owner = trial.user_attrs.get("owner") or {}
        return owner.get("host") != self.host or _pid_alive(int(owner.get("pid", -1)))

    def _fail_dead(self) -> None:
        """Fail trials whose worker died: by heartbeat on a database storage (the stale trial's
        copy is queued for retry), by pid on this host for any storage."""
        if is_heartbeat_enabled(self.storage):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(self.study)
        self.recover_dead_owners()

    def _is_search_trial(self, trial: optuna.trial.FrozenTrial) -> bool:
        return trial.user_attrs.get("stage", "search") == "search" and not trial.user_attrs.get("requested")

    def _claimed_slots(self, before: int | None = None) -> int:
        """Finished search trials plus live running ones (numbered below ``before`` if given):
        the slots of the ``trials`` target already taken."""
        taken = 0
        for trial in self.study.get_trials(deepcopy=False):
            if not self._is_search_trial(trial):
                continue
            if trial.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED):
                taken += 1
            elif (
                trial.state == optuna.trial.TrialState.RUNNING
                and (before is None or trial.number < before)
                and self._owner_alive(trial)
            ):
                taken += 1
        return taken

    def _surplus(self, number: int) -> bool:
        """Earlier live trials already fill the target: this one must not train."""
        return self._claimed_slots(before=number) >= self._target

    def objective(self, trial: optuna.Trial) -> float | tuple[float, float]:
        """A search-stage trial (or a queued evaluation of a later stage: its attrs say which)."""
        self._current = trial.number
        key = trial.suggest_categorical("candidate", [c.key for c in self.prepared.feasible])
        attrs = trial.user_attrs
        if (
            not attrs.get("requested")
            and attrs.get("stage", "search") == "search"
            and self._surplus(trial.number)
        ):
            trial.set_user_attr("surplus", True)
            raise Surplus(f"trial {trial.number}: the {self._target} search trials are already claimed")
        rung = int(attrs.get("rung", 0))
        if "seeds_wanted" in attrs:
            seeds = list(attrs["seeds_wanted"])
        else:
            reference = key == self.reference()
            count = self.ladder.reference_seed_count(0) if reference else self.ladder.seed_counts[0]
            seeds = list(self.ladder.seeds(count))
        return self.evaluate(trial, self.by_key[key], rung, seeds, attrs.get("stage", "search"))

    def evaluate(
        self, trial: optuna.Trial, candidate: Candidate, rung: int, seeds: list[int], stage: str
    ) -> float | tuple[float, float]:
        """Train ``candidate`` at ``rung``'s fidelity with the seeds not trained before; the
        trial's accuracy is the mean over ``seeds``."""
        for name, value in self._attrs(candidate, rung).items():
            trial.set_user_attr(name, value)
        trial.set_user_attr("stage", stage)
        trial.set_user_attr("seeds_wanted", seeds)
        trial.set_user_attr("reference", candidate.key == self.reference())
        trial.set_user_attr("owner", {"host": self.host, "pid": os.getpid()})
        trial.set_constraint("macs", candidate.macs - self.prepared.budget_macs)
        if self.config.budget.mparams:
            trial.set_constraint("params", candidate.params - self.prepared.budget_params)
        known = self._known_seeds(candidate.key, rung, seeds, trial.number)
        missing = [s for s in seeds if s not in known]
        accuracies = {s: known[s][0] for s in seeds if s in known}
        reused = {str(s): known[s][1] for s in seeds if s in known}
        data, proxy = self.prepared.data_for(rung), self.config.proxy
        fidelity = self.ladder.fidelities[rung]
        settings = TrainSettings(
            epochs=fidelity.epochs, batch_size=proxy.batch_size, lr=proxy.lr, device=proxy.device
        )

        def build() -> Any:
            return create_network(
                self.prepared.space.backbone,
                candidate.width_mult,
                candidate.plan,
                data.resolution,
                data.num_classes,
                data.in_channels,
                self.prepared.space.stem,
            )

        latency = self._reused_latency(known)
        limit = self.config.budget.latency_ms
        if limit is not None and missing and stage == "search":
            device = resolve_device(proxy.device)
            example = data.val_images[:1].to(device).float() / 255
            latency = measure_latency_ms(build().to(device), example)
            trial.set_constraint("latency_ms", latency - limit)
            if latency > limit:  # too slow on this device: never trained
                for name, value in (
                    ("accuracy", 0.0),
                    ("over_budget", True),
                    ("trained_steps", 0),
                    ("latency_ms", latency),
                    ("train_seconds", 0.0),
                ):
                    trial.set_user_attr(name, value)
                return self._values(0.0, candidate)

        pruning = self.config.objective == "accuracy" and self.config.pruner != "none"

        def on_epoch(epoch: int, accuracy: float) -> None:
            trial.report(accuracy, epoch)
            if epoch < fidelity.epochs and trial.should_prune():  # a finished run is never pruned
                trial.set_user_attr("trained_steps", epoch * (len(data.train_labels) // proxy.batch_size))
                trial.set_user_attr("accuracy", accuracy)
                raise optuna.TrialPruned()

        seconds, steps, images_per_second = 0.0, 0, None
        for i, seed in enumerate(missing):
            # Pruning judges the first trained seed only; the rest finish what it started.
            result = proxy_train(build, data, settings, seed, on_epoch if pruning and i == 0 else None)
            accuracies[seed] = result.accuracy
            seconds += result.train_seconds
            steps += result.trained_steps
            latency, images_per_second = result.latency_ms, result.images_per_second
        ordered = [accuracies[s] for s in seeds]
        summary = summarize(ordered)
        trial.set_user_attr("seeds", seeds)
        trial.set_user_attr("accuracies", ordered)
        trial.set_user_attr("accuracy", summary.mean)
        trial.set_user_attr("accuracy_se", summary.se)
        trial.set_user_attr("trained_seeds", missing)
        trial.set_user_attr("reused_seeds", reused)
        trial.set_user_attr("duplicate_of", min(reused.values()) if not missing else None)
        trial.set_user_attr("train_seconds", seconds)
        trial.set_user_attr("trained_steps", steps)
        trial.set_user_attr("candidate_epochs", len(missing) * fidelity.cost(self.ladder.fidelities[0]))
        trial.set_user_attr("latency_ms", latency)
        trial.set_user_attr("images_per_second", images_per_second)
        return self._values(summary.mean, candidate)

    def _reused_latency(self, known: dict[int, tuple[float, int]]) -> float | None:
        if not known:
            return None
        number = min(number for _, number in known.values())
        return self.study.get_trials(deepcopy=False)[number].user_attrs.get("latency_ms")

    # -- stages ---------------------------------------------------------------------------------
    def results(self) -> tuple[Results, dict[str, Costs]]:
        """Every finished evaluation, per rung of this study's ladder, and the candidates' costs."""
        return collect_results(self.study, self.ladder)

    def _search_running(self) -> bool:
        """A live worker is still running a search-stage trial."""
        return any(
            t.user_attrs.get("stage", "search") == "search" and self._owner_alive(t)
            for t in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        )

    def _claimed(self, request: Request, results: Results) -> bool:
        """A live worker is already training this evaluation's missing seeds."""
        missing = set(request.missing(results))
        return any(
            self._same_evaluation(t, request.key, request.rung)
            and missing <= set(t.user_attrs.get("seeds_wanted", []))
            and self._owner_alive(t)
            for t in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        )

    def run_request(self, request: Request) -> optuna.trial.TrialState:
        """Run one later-stage evaluation as a new trial, created RUNNING (claimed) in storage."""
        frozen = optuna.trial.create_trial(
            state=optuna.trial.TrialState.RUNNING,
            params={"candidate": request.key},
            distributions={"candidate": self._distribution},
            user_attrs={
                "stage": request.stage,
                "rung": request.rung,
                "seeds_wanted": list(request.seeds),
                "requested": True,  # by the schedule, not drawn by the sampler
            },
        )
        trial_id = self.storage.create_new_trial(self.study._study_id, template_trial=frozen)
        return self._run_claimed(trial_id, request)

    def _run_claimed(self, trial_id: int, request: Request) -> optuna.trial.TrialState:
        """Evaluate a stage trial this process holds RUNNING, recording heartbeats (Study.optimize
        does that for its own trials; these are made by hand)."""
        trial = optuna.Trial(self.study, trial_id)
        try:
            with get_heartbeat_thread(trial_id, self.storage):
                values = self.evaluate(
                    trial, self.by_key[request.key], request.rung, list(request.seeds), request.stage
                )
        except (RuntimeError, KeyboardInterrupt):
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            if not isinstance(sys.exc_info()[1], RuntimeError):
                raise
            return optuna.trial.TrialState.FAIL
        self.study.tell(trial, values)
        return optuna.trial.TrialState.COMPLETE

    def _run_queued_stage_trial(self) -> bool:
        """Claim and run a stage evaluation queued again after its worker died (the heartbeat's
        retry); False when there is none."""
        for queued in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)):
            attrs = queued.user_attrs
            if self._is_search_trial(queued) or queued.params.get("candidate") not in self.by_key:
                continue
            # Moving WAITING to RUNNING succeeds for exactly one worker (Optuna pops trials so).
            if self.storage.set_trial_state_values(queued._trial_id, state=optuna.trial.TrialState.RUNNING):
                request = Request(
                    queued.params["candidate"],
                    int(attrs.get("rung", 0)),
                    tuple(attrs["seeds_wanted"]),
                    attrs["stage"],
                )
                self._run_claimed(queued._trial_id, request)
                return True
        return False

    # -- running --------------------------------------------------------------------------------
    def finished(self) -> int:
        return search_trials_finished(self.study)

    def recover_dead_owners(self) -> list[int]:
        """Fail RUNNING trials whose owning process on this host is gone; re-queue a search-stage
        trial's candidate (a later stage's evaluation is requested again by the schedule)."""
        recovered = []
        for trial in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            owner = trial.user_attrs.get("owner") or {}
            if (
                owner.get("host") == self.host
                and owner.get("pid") != os.getpid()
                and not _pid_alive(owner["pid"])
            ):
                self.study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
                if "candidate" in trial.params and trial.user_attrs.get("stage", "search") == "search":
                    self.study.enqueue_trial({"candidate": trial.params["candidate"]})
                recovered.append(trial.number)
        return recovered

    def run(self, target: int, progress: Callable[[str, int, int], None] | None = None) -> int:
        """Run search-stage trials until ``target`` finished ones exist, then the schedule's later
        stages until it is complete; returns the number of finished search-stage trials.

        Several workers may share the study: a worker starts a search trial only while finished
        plus live running ones are below the target (a trial that lost the race for the last slot
        is failed untrained as ``surplus``), and waits while live workers hold the rest."""
        self._target = target
        failures = 0
        deadline = time.monotonic() + MAX_WAIT_SECONDS
        search_reported = False  # the search stage's bar is completed once, then the stages' bars
        while failures < MAX_CONSECUTIVE_FAILURES:
            self._fail_dead()
            done = self.finished()
            if done < target:
                if progress:
                    progress("search", done, target)
                if self._claimed_slots() >= target:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(1.0)  # live workers hold the remaining slots
                    continue
                trial = self._optimize_one()
                failed = trial.state == optuna.trial.TrialState.FAIL and not trial.user_attrs.get("surplus")
                failures = failures + 1 if failed else 0
                continue
            if progress and not search_reported:
                progress("search", done, target)
                search_reported = True
            if self._search_running():  # another worker's trial may still change the ranking
                if time.monotonic() > deadline:
                    break
                time.sleep(2.0)
                continue
            if self._run_queued_stage_trial():
                continue
            results, costs = self.results()
            stage, requests = self.ladder.pending(results, costs, self.reference())
            if stage is None:
                break
            if progress:
                progress(stage, self._stage_done(stage), self._stage_done(stage) + len(requests))
            free = [r for r in requests if not self._claimed(r, results)]
            if not free:  # other workers are on it
                if time.monotonic() > deadline:
                    break
                time.sleep(2.0)
                continue
            state = self.run_request(free[0])
            unresolved = free[0].missing(self.results()[0]) == free[0].missing(results)
            failures = failures + 1 if state == optuna.trial.TrialState.FAIL or unresolved else 0
        return self.finished()

    def _optimize_one(self) -> optuna.trial.FrozenTrial:
        """One trial through Study.optimize (a queued one first; heartbeats on a database)."""
        mine: list[optuna.trial.FrozenTrial] = []
        try:
            self.study.optimize(
                self.objective, n_trials=1, catch=(RuntimeError,), callbacks=[lambda _, t: mine.append(t)]
            )
        except KeyboardInterrupt:
            self._requeue_interrupted()
            raise
        return mine[0]

    def _requeue_interrupted(self) -> None:
        """Ctrl-C failed this process's search trial: queue its candidate, so a rerun trains it
        (a later stage's evaluation is requested again by the schedule)."""
        if self._current is None:
            return
        trial = self.study.get_trials(deepcopy=False)[self._current]
        if trial.state == optuna.trial.TrialState.FAIL and self._is_search_trial(trial) and trial.params:
            self.study.enqueue_trial({"candidate": trial.params["candidate"]})

    def reference(self) -> str | None:
        """The study's vanilla reference, unless it turned out over the (latency) budget."""
        key = self.prepared.reference
        over = any(
            t.user_attrs.get("candidate") == key and t.user_attrs.get("over_budget")
            for t in self.study.get_trials(deepcopy=False)
        )
        return None if over else key

    def _stage_done(self, stage: str) -> int:
        """Finished evaluations of ``stage`` at this study's fidelities (a changed schedule's
        older evaluations do not count)."""
        return sum(
            1
            for t in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if t.user_attrs.get("stage") == stage and _rung_of(t.user_attrs, self.ladder) is not None
        )


def dry_run(prepared: Prepared) -> dict[str, Any]:
    """Space size, the feasible fraction under the budget (exhaustive), and an estimated run time
    (from a timed one-epoch run of the median-cost feasible candidate unless given)."""
    feasible = prepared.feasible
    # Time one epoch of the median-cost feasible candidate.
    median = sorted(feasible, key=lambda c: c.macs)[len(feasible) // 2]
    data, proxy = prepared.data, prepared.config.proxy
    start = time.perf_counter()
    proxy_train(
        lambda: create_network(
            prepared.space.backbone,
            median.width_mult,
            median.plan,
            data.resolution,
            data.num_classes,
            data.in_channels,
            prepared.space.stem,
        ),
        data,
        TrainSettings(epochs=1, batch_size=proxy.batch_size, device=proxy.device),
        proxy.seed,
    )
    seconds_per_trial = (time.perf_counter() - start) * proxy.epochs
    macs = [c.macs for c in feasible]
    return {
        "space": prepared.config.space,
        "candidates": len(prepared.candidates),
        "feasible": len(feasible),
        "feasible_fraction": len(feasible) / len(prepared.candidates),
        "budget_mmacs": prepared.config.budget.mmacs,
        "budget_mparams": prepared.config.budget.mparams,
        "feasible_mmacs": [min(macs) / 1e6, statistics.median(macs) / 1e6, max(macs) / 1e6],
        "data": prepared.data.describe(),
        "trials": prepared.config.trials,
        "seconds_per_trial": seconds_per_trial,
        "estimated_minutes": seconds_per_trial * prepared.config.trials / 60,
    }


def open_study(storage: str, study_name: str) -> optuna.Study:
    if "://" not in storage and not Path(storage).exists():
        raise InvalidInput(f"storage {storage} does not exist; run 'ulsam-nas search' first")
    try:
        study_storage: Any = storage
        if "://" not in storage:
            from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

            study_storage = optuna.storages.JournalStorage(
                JournalFileBackend(storage, lock_obj=JournalFileOpenLock(storage))
            )
        return optuna.load_study(study_name=study_name, storage=study_storage)
    except KeyError:
        raise InvalidInput(f"no study named {study_name!r} in {redact(storage)}") from None
    except Exception as error:  # SQLAlchemy's messages can echo the URL: say which part failed
        raise InvalidInput(f"cannot open storage {redact(storage)}: {type(error).__name__}") from None


def search_trials_finished(study: optuna.Study) -> int:
    """Finished trials the sampler drew (the ``trials`` target counts these; the schedule's
    requested evaluations do not)."""
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return sum(
        1
        for t in study.get_trials(deepcopy=False, states=states)
        if t.user_attrs.get("stage", "search") == "search" and not t.user_attrs.get("requested")
    )


def stored_config(study: optuna.Study) -> StudyConfig:
    """The configuration the study's latest ``search`` run stored."""
    try:
        return StudyConfig.model_validate(study.user_attrs.get("config", {}))
    except ValidationError:
        raise InvalidInput(f"study {study.study_name!r} was not made by 'ulsam-nas search'") from None


def best_candidates(study: optuna.Study, top: int = 5) -> dict[str, Any]:
    """The study's candidates ranked by the highest fidelity they reached, then mean accuracy;
    the confirmed contenders tied with the best (paired over common seeds) and the cheapest of
    them recommended; the noise per fidelity and the training each stage spent."""
    config = stored_config(study)
    ladder = config.ladder
    results, costs = collect_results(study, ladder)
    if not results:
        raise InvalidInput(f"study {study.study_name!r} has no finished, trained trial yet")
    reference = study.user_attrs.get("reference")
    selection = select(ladder, results, costs, reference)
    trials = study.get_trials(deepcopy=False)
    first: dict[str, optuna.trial.FrozenTrial] = {}
    for trial in trials:
        if trial.state == optuna.trial.TrialState.COMPLETE and "candidate" in trial.user_attrs:
            first.setdefault(trial.user_attrs["candidate"], trial)
    network = study.user_attrs.get("network", {})

    def label(key: str) -> str:
        attrs = first[key].user_attrs
        return f"{attrs['plan'] or 'plain'} (α {attrs['width_mult']:g})"

    candidates = []
    for entry in selection.ranked[:top]:
        attrs = first[entry.key].user_attrs
        call = (
            f"ulsam_nas.create_network({attrs['backbone']!r}, width_mult={attrs['width_mult']!r}, "
            f"plan={attrs['plan']!r}" + "".join(f", {k}={v!r}" for k, v in network.items()) + ")"
        )
        fidelity = ladder.fidelities[entry.rung]
        comparison = entry.comparison
        candidates.append(
            {
                "trial": first[entry.key].number,
                "candidate": entry.key,
                "plan": attrs["plan"],
                "backbone": attrs["backbone"],
                "width_mult": attrs["width_mult"],
                "groups": attrs.get("groups"),
                "stage": entry.stage,
                "epochs": fidelity.epochs,
                "images": fidelity.images,
                "seeds": list(entry.seeds),
                "accuracies": list(entry.accuracies),
                "accuracy": entry.mean,
                "accuracy_se": entry.se,
                "tied_with_best": entry.tied_with_best,
                "difference_to_best": None
                if comparison is None
                else {
                    "seeds": comparison.n,
                    "mean": comparison.difference,
                    "ci_low": comparison.ci_low,
                    "ci_high": comparison.ci_high,
                    "p_value": comparison.p_value,
                },
                "macs": attrs["macs"],
                "params": attrs["params"],
                "latency_ms": costs[entry.key].latency_ms,
                "create_network": call,
            }
        )
    recommended = first[selection.recommended].user_attrs if selection.recommended else None
    finished = [
        t
        for t in trials
        if t.state == optuna.trial.TrialState.COMPLETE
        and not t.user_attrs.get("over_budget")
        and t.user_attrs.get("accuracy") is not None
    ]
    return {
        "study": study.study_name,
        "unit": "MAC",
        "scored_trials": len(finished),
        "trained_trials": sum(1 for t in finished if t.user_attrs.get("trained_steps")),
        "test": TEST_NAME + ", 95% interval of the mean difference; tied when it contains 0",
        "confirmed": selection.confirmed,
        "best": selection.best,
        "recommended": recommended["plan"] if recommended else None,
        "recommended_width_mult": recommended["width_mult"] if recommended else None,
        "recommended_candidate": selection.recommended,
        "recommendation": tie_sentence(selection, {k: label(k) for k in first}, costs),
        "detectable_difference": selection.detectable,
        "noise": selection.noise,
        "training": training_by_stage(trials, ladder),
        "candidates": candidates,
        "notes": selection.notes,
    }


def training_by_stage(trials: list[optuna.trial.FrozenTrial], ladder: Ladder) -> list[dict[str, Any]]:
    """How much training each stage spent: trials, seed runs, candidate-epochs (one epoch at the
    first rung's image count = 1) and seconds."""
    rows: dict[str, dict[str, Any]] = {
        name: {"stage": name, "trials": 0, "seed_runs": 0, "candidate_epochs": 0.0, "train_seconds": 0.0}
        for name in ladder.stage_names()
    }
    for trial in trials:
        attrs = trial.user_attrs
        name = attrs.get("stage", "search")
        if name not in rows or trial.state not in (
            optuna.trial.TrialState.COMPLETE,
            optuna.trial.TrialState.PRUNED,
        ):
            continue
        row = rows[name]
        row["trials"] += 1
        row["seed_runs"] += len(attrs.get("trained_seeds") or [])
        row["candidate_epochs"] += attrs.get("candidate_epochs") or 0.0
        row["train_seconds"] += attrs.get("train_seconds") or 0.0
    return list(rows.values())
