"""The tracer: every size concrete (so code may compute with sizes, branch on them and pass them
to torch), every value the forward makes from them traced, the user's model left as it was."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ulsam_nas import InvalidInput, analyze
from ulsam_nas.analysis.trace import TracedInt, trace


class FromSizes(nn.Module):
    """A position map made from the input's sizes, then convolved: its MACs are the network's."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Conv2d(2, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        rows = torch.arange(h, dtype=x.dtype).view(1, 1, h, 1).expand(b, 1, h, w)
        columns = torch.ones(b, 1, h, w).cumsum(dim=3)
        return x + self.embed(torch.cat((rows, columns), dim=1))


def test_tensors_made_from_sizes_are_traced_and_their_work_counted():
    model = FromSizes()
    cost = analyze(model, (4, 5, 6)).cost()
    assert cost.macs_by["conv"] == 4 * 2 * 5 * 6 and cost.ops["cumsum"] == 5 * 6
    assert cost.ops["add"] == 4 * 5 * 6


def test_the_model_is_left_as_it_was():
    model = FromSizes()
    before = set(vars(model)), {k: v.clone() for k, v in model.state_dict().items()}
    analyze(model, (4, 5, 6))
    assert set(vars(model)) == before[0]
    assert all(torch.equal(v, before[1][k]) for k, v in model.state_dict().items())


class Sizes(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen = (x.shape, x.size(2), x.dim(), len(x))
        return F.adaptive_avg_pool2d(x, (x.shape[2], 1))


def test_sizes_are_concrete_ints_that_remember_they_were_read():
    model = Sizes()
    traced = trace(model, (3, 4, 1))
    shape, height, dims, length = model.seen
    assert isinstance(shape, torch.Size) and all(isinstance(s, TracedInt) for s in shape)
    assert (height, dims, length) == (4, 4, 1) and isinstance(height, TracedInt)
    pool = next(n for n in traced.nodes if n.target is F.adaptive_avg_pool2d)
    assert isinstance(pool.args[1][0], TracedInt) and type(pool.args[1][1]) is int
    # read from the input, a height of 1 is still "the input's height": a pool to one column
    assert analyze(model, (3, 1, 1)).cost().ops == {"axis_avg_pool": 3}


class TwoInputs(nn.Module):
    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return x * mask


def test_a_forward_that_needs_a_second_input_is_refused_in_one_line():
    with pytest.raises(InvalidInput) as error:
        analyze(TwoInputs(), (3, 4, 4))
    message = str(error.value)
    assert "the forward's argument 'mask' needs a value" in message and len(message.splitlines()) == 1


class Literals(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape
        scale = torch.tensor(float(h))
        mask = torch.ones(h, w).tril()
        return x * mask / scale + torch.linspace(0, 1, w)


def test_tensors_created_in_the_forward_are_values_that_cost_nothing_themselves():
    """Recorded now (they were constants before sizes became concrete): creating them is not a
    remainder, and the arithmetic on them is counted."""
    cost = analyze(Literals(), (3, 4, 4)).cost()
    assert cost.complete and cost.ops == {"mul": 48, "div": 48, "add": 48}
