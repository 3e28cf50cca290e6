"""The study file: its schema, the command line's overrides of it, and the identity a study keeps.

A study file (``studies/*.yaml``) names a search space, a budget, the proxy fidelity, the
sampler, an optional fidelity schedule and where the study is stored.  Paths in it are
relative to the file.  What must not change between runs of one study (``study_identity``) is
stored in the study when it is created and compared on every later run.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ulsam_nas.errors import InvalidInput
from ulsam_nas.search.data import SYNTHETIC_TRAIN, SYNTHETIC_VAL
from ulsam_nas.search.schedule import Ladder, ScheduleConfig
from ulsam_nas.search.space import one_line, read_yaml
from ulsam_nas.search.train import TrainSettings

# Bumped when what a study stores changes meaning: a study made under another schema is refused,
# not misread.  2: structured parameters (width, action, module and g per position) instead of
# one categorical "candidate" over an enumerated space; validation held out of the training
# split; the recipe in the proxy section.
SCHEMA = 2


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Budget(_Strict):
    """A study's limits: closed-form MACs and parameters (in millions, in ``convention``) and a
    predicted latency (ms, on the study's ``latency`` device); a limit not given is none."""

    mmacs: float | None = Field(default=None, gt=0)
    mparams: float | None = Field(default=None, gt=0)
    convention: Literal["exact", "paper"] = "exact"
    # Predicted from the study's latency table (measured once, when the study is created), and
    # judged when a configuration is drawn, like the MAC budget: an over-latency draw never trains.
    latency_ms: float | None = Field(default=None, gt=0)

    @property
    def macs(self) -> float:
        """The MAC limit as a count (inf: none)."""
        return self.mmacs * 1e6 if self.mmacs else math.inf

    @property
    def params(self) -> float:
        """The parameter limit as a count (inf: none)."""
        return self.mparams * 1e6 if self.mparams else math.inf


class LatencyDevice(_Strict):
    """Where a study's latencies are predicted for: this CPU under ``runtime`` (torch: PyTorch
    eager; onnxruntime: ONNX Runtime) at ``threads`` and ``batch`` images per call."""

    runtime: Literal["torch", "onnxruntime"] = "torch"
    threads: int = Field(default=1, ge=1)
    batch: int = Field(default=1, ge=1)


class Proxy(_Strict):
    """The first rung's data and training recipe (train.TrainSettings says what each does)."""

    data: str = "fashion-mnist"
    train_images: int | None = Field(default=5000, ge=1)
    # Held out of the training split (unless the source has a validation part of its own).
    val_images: int | None = Field(default=10_000, ge=1)
    resolution: int = Field(default=32, ge=8)
    epochs: int = Field(default=2, ge=1)
    batch_size: int = Field(default=32, ge=1)
    lr: float = Field(default=0.05, gt=0)
    warmup: float = Field(default=0.15, ge=0, lt=1)
    optimizer: Literal["sgd", "adamw"] = "sgd"
    momentum: float = Field(default=0.9, ge=0, lt=1)
    nesterov: bool = True
    weight_decay: float = Field(default=5e-4, ge=0)
    label_smoothing: float = Field(default=0.1, ge=0, lt=1)
    ema: float | None = Field(default=None, gt=0, lt=1)
    precise_bn: int = Field(default=2048, ge=0)
    channels_last: bool = True
    # sequential: a built-in's layers and modules are initialised in network order (a module
    # shifts every later layer's initialisation); shared: the plain network is initialised
    # first, so the layers two candidates share start identical (a brought network always is).
    init: Literal["sequential", "shared"] = "sequential"
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    seed: int = 0
    seeds: int = Field(default=1, ge=1)  # paired seeds per candidate: seed, seed + 1, ...

    def train_settings(self, epochs: int | None = None) -> TrainSettings:
        """The recipe as training settings (``epochs``: a rung's, else the first rung's)."""
        return TrainSettings(
            epochs=self.epochs if epochs is None else epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            warmup=self.warmup,
            optimizer=self.optimizer,
            momentum=self.momentum,
            nesterov=self.nesterov,
            weight_decay=self.weight_decay,
            label_smoothing=self.label_smoothing,
            ema=self.ema,
            precise_bn=self.precise_bn,
            channels_last=self.channels_last,
            device=self.device,
        )


class Sampler(_Strict):
    # grid: every feasible candidate once, in random order (ablations over small spaces)
    name: Literal["tpe", "random", "nsga2", "grid"] = "tpe"
    seed: int = 0


class StudyConfig(_Strict):
    """The schema of a studies/*.yaml file; paths are relative to the file."""

    name: str = Field(min_length=1)
    space: str
    budget: Budget = Budget()
    objective: Literal["accuracy", "accuracy+macs", "accuracy+latency"] = "accuracy"
    latency: LatencyDevice = LatencyDevice()
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

    @property
    def needs_latency(self) -> bool:
        """Whether the study predicts latencies (a latency budget or objective)."""
        return self.budget.latency_ms is not None or self.objective == "accuracy+latency"

    @property
    def storage_url(self) -> str:
        """The storage, resolved by ``load_study_config`` (a journal file beside the study file
        unless the file or ``--storage`` names another)."""
        if self.storage is None:
            raise InvalidInput(f"study {self.name!r} names no storage")
        return self.storage


def study_overrides(
    *,
    trials: int | None = None,
    budget_mmacs: float | None = None,
    budget_mparams: float | None = None,
    budget_latency_ms: float | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    seed: int | None = None,
    data: str | None = None,
    images: int | None = None,
    epochs: int | None = None,
    seeds: int | None = None,
    no_schedule: bool = False,
    resolution: int | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """The dotted overrides that command-line flags make to a study file (None: not given).

    ``data="synthetic"`` without ``images`` also means the generated set's own sizes
    (SYNTHETIC_TRAIN training and SYNTHETIC_VAL validation images), so a quick run on generated
    data stays quick; ``data: synthetic`` written in a study file keeps the file's sizes."""
    synthetic = data == "synthetic" and images is None
    return {
        **({"proxy.train_images": SYNTHETIC_TRAIN, "proxy.val_images": SYNTHETIC_VAL} if synthetic else {}),
        "trials": trials,
        "budget.mmacs": budget_mmacs,
        "budget.mparams": budget_mparams,
        "budget.latency_ms": budget_latency_ms,
        "storage": storage,
        "name": study_name,
        "sampler.seed": seed,
        "proxy.seed": seed,
        "proxy.data": data,
        **({"proxy.train_images": images} if not synthetic else {}),
        "proxy.epochs": epochs,
        "proxy.seeds": seeds,
        **({"schedule": None} if no_schedule else {}),
        "proxy.resolution": resolution,
        "proxy.device": device,
    }


def load_study_config(path: str | Path, overrides: dict[str, Any] | None = None) -> StudyConfig:
    """Read a study file, apply overrides (dotted keys, e.g. "proxy.epochs"; None: not given,
    except for "schedule", where None means no schedule), and resolve the space and storage
    paths against the file's folder."""
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
        if value is not None or dotted == "schedule":
            _set_dotted(document, dotted, value, path)
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


def _set_dotted(document: dict[str, Any], dotted: str, value: Any, path: Path) -> None:
    target = document
    *parents, leaf = dotted.split(".")
    for parent in parents:
        if target.get(parent) is None:
            target[parent] = {}
        if not isinstance(target[parent], dict):
            raise InvalidInput(f"{path}: {parent} must be a mapping of keys, got {target[parent]!r}")
        target = target[parent]
    target[leaf] = value


def study_identity(config: StudyConfig) -> dict[str, Any]:
    """What must not change between runs of one study: the schema, the space, the budget and the
    proxy (data, fidelity, recipe)."""
    return {
        "schema": SCHEMA,
        "space": Path(config.space).read_text(encoding="utf-8"),
        "budget": config.budget.model_dump(),
        "objective": config.objective,
        # More seeds or another schedule may be added to a study later: results are kept per
        # (candidate, fidelity, seed), so nothing already trained is invalidated.
        # A default not written into older studies' identities is left out, so they resume.
        "proxy": config.proxy.model_dump(
            exclude={"device", "seeds"} | ({"init"} if config.proxy.init == "sequential" else set())
        ),
        **({"latency": config.latency.model_dump()} if config.needs_latency else {}),
    }


def stored_config(user_attrs: dict[str, Any], study_name: str) -> StudyConfig:
    """The configuration a study's latest ``search`` run stored in its attributes."""
    try:
        return StudyConfig.model_validate(user_attrs.get("config", {}))
    except ValidationError:
        raise InvalidInput(f"study {study_name!r} was not made by 'ulsam-nas search'") from None


def settings_fingerprint(identity: dict[str, Any]) -> str:
    """A short stamp of a study's identity, written into ``best``, ``report`` and ``calibrate``
    outputs so that a run with other settings refuses to replace them."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:12]
