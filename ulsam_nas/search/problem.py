"""The problem a study solves, resolved once: its search space, its data, every candidate with
its exact cost, the budget and which candidates fit it, the network arguments every candidate
is built with, and the vanilla reference whose seed spread states the study's noise."""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ulsam_nas.backbones.network import backbone_table, create_network
from ulsam_nas.errors import InvalidInput
from ulsam_nas.search.config import StudyConfig
from ulsam_nas.search.data import ImageData, load_data
from ulsam_nas.search.space import Candidate, SearchSpace, enumerate_candidates, load_space
from ulsam_nas.search.train import TrainSettings, proxy_train


@dataclass
class Problem:
    config: StudyConfig
    space: SearchSpace
    data: ImageData
    candidates: list[Candidate]
    feasible: list[Candidate]
    _data_by_images: dict[int | None, ImageData] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_key = {c.key: c for c in self.candidates}

    @property
    def network(self) -> dict[str, Any]:
        """The arguments besides backbone, width and plan that every candidate is built with."""
        return {
            "resolution": self.data.resolution,
            "num_classes": self.data.num_classes,
            "in_channels": self.data.in_channels,
            "stem": self.space.stem,
        }

    def build(self, candidate: Candidate) -> nn.Module:
        return create_network(self.space.backbone, candidate.width_mult, candidate.plan, **self.network)

    def table(self, width_mult: float) -> Any:
        """The backbone's layer table at ``width_mult`` (for resolving plans)."""
        return backbone_table(self.space.backbone, width_mult, **self.network)

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

    def violations(self, candidate: Candidate) -> dict[str, float]:
        """Closed-form constraint values (≤ 0 inside the budget), as Optuna records them."""
        found = {"macs": candidate.macs - self.budget_macs}
        if self.config.budget.mparams:
            found["params"] = candidate.params - self.budget_params
        return found

    @property
    def widest_plain(self) -> str | None:
        """The widest plain backbone inside the closed-form budget: the study's vanilla
        reference unless it turns out over a measured (latency) budget; None when every plain
        backbone is over it."""
        plain = [c for c in self.feasible if c.plan == ""]
        return max(plain, key=lambda c: c.width_mult).key if plain else None


def prepare(config: StudyConfig) -> Problem:
    """Load the space and the data, enumerate every candidate and keep those inside the budget."""
    space = load_space(config.space)
    proxy = config.proxy
    data = load_data(proxy.data, proxy.train_images, proxy.val_images, proxy.resolution, proxy.seed)
    candidates = enumerate_candidates(
        space, data.resolution, data.num_classes, data.in_channels, config.budget.convention
    )
    problem = Problem(config, space, data, candidates, [])
    problem.feasible = [c for c in candidates if problem.within(c)]
    if not problem.feasible:
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
    return problem


def dry_run(problem: Problem) -> dict[str, Any]:
    """Space size, the feasible fraction under the budget (exhaustive), and an estimated run time
    (from a timed one-epoch run of the median-cost feasible candidate)."""
    feasible = problem.feasible
    median = sorted(feasible, key=lambda c: c.macs)[len(feasible) // 2]
    proxy = problem.config.proxy
    start = time.perf_counter()
    proxy_train(
        lambda: problem.build(median),
        problem.data,
        TrainSettings(epochs=1, batch_size=proxy.batch_size, device=proxy.device),
        proxy.seed,
    )
    seconds_per_trial = (time.perf_counter() - start) * proxy.epochs
    macs = [c.macs for c in feasible]
    return {
        "space": problem.config.space,
        "candidates": len(problem.candidates),
        "feasible": len(feasible),
        "feasible_fraction": len(feasible) / len(problem.candidates),
        "budget_mmacs": problem.config.budget.mmacs,
        "budget_mparams": problem.config.budget.mparams,
        "feasible_mmacs": [min(macs) / 1e6, statistics.median(macs) / 1e6, max(macs) / 1e6],
        "data": problem.data.describe(),
        "trials": problem.config.trials,
        "seconds_per_trial": seconds_per_trial,
        "estimated_minutes": seconds_per_trial * problem.config.trials / 60,
    }
