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
from ulsam_nas.search.config import StudyConfig
from ulsam_nas.search.data import DataShape, ImageData, describe_source, load_data
from ulsam_nas.search.network import BroughtNetwork, study_network
from ulsam_nas.search.parameters import ParameterSpace
from ulsam_nas.search.space import Candidate, SearchSpace, load_space


@dataclass
class Problem:
    config: StudyConfig
    space: SearchSpace
    shape: DataShape
    parameters: ParameterSpace
    _data: ImageData | None = None
    _data_by_images: dict[int | None, ImageData] = field(default_factory=dict)

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
        """A candidate's model, initialised under torch's current seed (``proxy.init``: in
        network order, or the plain network first so that the layers candidates share start
        identical)."""
        plain_first = self.config.proxy.init == "shared"
        return self.parameters.network.build(candidate.width_mult, candidate.plan, plain_first)

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


def cost_objective(problem: Problem, candidate: Candidate | None) -> float:
    """A two-objective study's second value: the candidate's MACs (``accuracy+macs``) or its
    predicted latency (``accuracy+latency``); inf for a draw that cannot be built."""
    if candidate is None:
        return math.inf
    if problem.config.objective == "accuracy+latency":
        return candidate.latency_ms if candidate.latency_ms is not None else math.inf
    return float(candidate.macs)


def prepare(config: StudyConfig) -> Problem:
    """Load the space, read the data source's shape (images are loaded when training needs them)
    and check that the budget admits at least the cheapest configuration."""
    space = load_space(config.space)
    proxy = config.proxy
    shape = describe_source(proxy.data, proxy.train_images, proxy.val_images, proxy.seed)
    network = study_network(space, proxy.resolution, shape.num_classes, shape.in_channels)
    problem = Problem(config, space, shape, ParameterSpace(space, network, config.budget))
    _check_paper_paths(problem)
    cheapest = problem.parameters.cheapest()
    fewest = problem.parameters.fewest_params()
    if cheapest.macs > problem.parameters.budget.macs or fewest.params > problem.parameters.budget.params:
        given = [
            f"{v:g} {unit}"
            for v, unit in ((config.budget.mmacs, "MMACs"), (config.budget.mparams, "MParams"))
            if v is not None
        ]
        worst = cheapest if cheapest.macs > problem.parameters.budget.macs else fewest
        raise InvalidInput(
            f"the budget ({', '.join(given)}) is below the cheapest configuration in the space: "
            f"{worst.macs / 1e6:.3f} MMACs, {worst.params / 1e6:.3f} MParams "
            f"({problem.parameters.network.width_label(worst.width_mult)}, plan '{worst.plan}')"
        )
    return problem


def _check_paper_paths(problem: Problem) -> None:
    """A brought network's ``paper_plan`` names module paths: a misspelt one is refused, not
    skipped like a placement whose options do not fit at some width."""
    space = problem.space
    if space.model is None or not space.paper_plan.strip():
        return
    brought = problem.parameters.network
    assert isinstance(brought, BroughtNetwork)  # the space names a model
    network = brought.at(space.width_mults[0])
    for segment in (s for s in space.paper_plan.split(",") if s.strip()):
        target = segment.partition(":")[0].partition("@")[2].strip()
        try:
            network.find(target)
        except InvalidInput as error:
            raise InvalidInput(f"{space.model}: paper_plan {segment.strip()!r}: {error}") from None
