"""The problem a study solves, resolved once: its search space and the sampler's parameters over
it, its data, the budget, the network arguments every candidate is built with, and the vanilla
reference whose seed spread states the study's noise.  Nothing is enumerated: a configuration is
costed in closed form when it is drawn."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ulsam_nas.errors import InvalidInput
from ulsam_nas.networks import Network
from ulsam_nas.search.config import StudyConfig
from ulsam_nas.search.data import DataShape, ImageData, describe_source, load_data
from ulsam_nas.search.network import study_network
from ulsam_nas.search.parameters import Assessment, Budget, ParameterSpace
from ulsam_nas.search.space import Candidate, SearchSpace, load_space


@dataclass
class Problem:
    config: StudyConfig
    space: SearchSpace
    shape: DataShape
    parameters: ParameterSpace
    _data: ImageData | None = None
    _data_by_images: dict[int | None, ImageData] = field(default_factory=dict)

    def assess(self, width_mult: float, plan: str) -> Assessment:
        """A configuration's cost and constraints (``ParameterSpace.assess``)."""
        return self.parameters.assess(width_mult, plan)

    def candidate(self, key: str) -> Candidate:
        """A buildable configuration from its key "α|plan" (``ParameterSpace.candidate``)."""
        return self.parameters.candidate(key)

    @property
    def network(self) -> dict[str, Any]:
        """The arguments besides backbone, width and plan that every candidate is built with (the
        study's ``network`` attribute)."""
        return self.parameters.network.attrs()

    @property
    def data(self) -> ImageData:
        """The first rung's data, loaded on first use (a dry run never loads it)."""
        if self._data is None:
            proxy = self.config.proxy
            self._data = load_data(
                proxy.data, proxy.train_images, proxy.val_images, proxy.resolution, proxy.seed
            )
        return self._data

    def build(self, candidate: Candidate) -> nn.Module:
        """A candidate's model, initialised under torch's current seed."""
        return self.parameters.network.build(candidate.width_mult, candidate.plan)

    def at(self, width_mult: float) -> Network:
        """The network at ``width_mult`` (its positions, costs and plans)."""
        return self.parameters.network.at(width_mult)

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
        return self.parameters.budget.macs

    @property
    def budget_params(self) -> float:
        return self.parameters.budget.params

    def within(self, candidate: Candidate) -> bool:
        return candidate.macs <= self.budget_macs and candidate.params <= self.budget_params

    def assessment(self, candidate: Candidate) -> Assessment:
        return self.assess(candidate.width_mult, candidate.plan)

    @property
    def widest_plain(self) -> str | None:
        """The widest plain backbone inside the closed-form budget: the study's vanilla
        reference unless it turns out over a measured (latency) budget; None when every plain
        backbone is over it."""
        plain = [self.candidate(Candidate.key_of(w, "")) for w in self.space.width_mults]
        inside = [c for c in plain if self.within(c)]
        return max(inside, key=lambda c: c.width_mult).key if inside else None


def prepare(config: StudyConfig) -> Problem:
    """Load the space, read the data source's shape (images are loaded when training needs them)
    and check that the budget admits at least the cheapest configuration."""
    space = load_space(config.space)
    proxy = config.proxy
    shape = describe_source(proxy.data, proxy.train_images, proxy.val_images, proxy.seed)
    budget = Budget(
        config.budget.mmacs * 1e6 if config.budget.mmacs else math.inf,
        config.budget.mparams * 1e6 if config.budget.mparams else math.inf,
        config.budget.convention,
    )
    network = study_network(space, proxy.resolution, shape.num_classes, shape.in_channels)
    problem = Problem(config, space, shape, ParameterSpace(space, network, budget))
    cheapest = problem.parameters.cheapest()
    fewest = problem.parameters.fewest_params()
    if cheapest.macs > problem.budget_macs or fewest.params > problem.budget_params:
        given = [
            f"{v:g} {unit}"
            for v, unit in ((config.budget.mmacs, "MMACs"), (config.budget.mparams, "MParams"))
            if v is not None
        ]
        worst = cheapest if cheapest.macs > problem.budget_macs else fewest
        raise InvalidInput(
            f"the budget ({', '.join(given)}) is below the cheapest configuration in the space: "
            f"{worst.macs / 1e6:.3f} MMACs, {worst.params / 1e6:.3f} MParams "
            f"(α {worst.width_mult:g}, plan '{worst.plan}')"
        )
    return problem
