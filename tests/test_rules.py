"""The rule hook: ``register_rule`` for a function, a tensor method and a module class; the
tool's own rules go through the same registry; a rule's bad answer is refused in one line."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn

from ulsam_nas import Call, InvalidInput, analyze, register_rule
from ulsam_nas.analysis import UNCOSTED
from ulsam_nas.analysis.torch_rules import MODULE_RULES
from ulsam_nas.cost import Terms


@pytest.fixture
def registered() -> Iterator[list[tuple[object, object]]]:
    """Rules a test registers, with what they replaced, put back afterwards."""
    added: list[tuple[object, object]] = []
    yield added
    for operator, previous in reversed(added):
        from ulsam_nas.analysis import rules

        for key in rules._keys(operator):
            if previous is None:
                rules._RULES.pop(key, None)
            else:
                rules._RULES[key] = previous  # type: ignore[assignment]


def register(added: list[tuple[object, object]], operator: object, rule) -> None:
    added.append((operator, register_rule(operator, rule)))


class Erf(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return torch.erf(x) + x.erf()


def test_a_function_and_a_tensor_method_without_rules_are_the_remainder_until_registered(registered):
    before = analyze(Erf(), (3, 5, 5), strict=False)
    assert [u.op for u in before.remainder] == ["torch.erf", "Tensor.erf"]
    elements = lambda call: Terms(ops={"gelu": call.out.numel})  # noqa: E731  (erf is GELU's kernel)
    register(registered, torch.erf, elements)
    register(registered, torch.Tensor.erf, elements)
    after = analyze(Erf(), (3, 5, 5)).cost()
    assert after.complete and after.ops["gelu"] == 2 * 4 * 5 * 5
    assert after.macs == before.cost().macs and UNCOSTED not in after.ops


class Fused(nn.Module):
    """A user's module whose forward fx could trace, but that they cost as one operation."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(4, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.erf(x @ self.weight)


def test_a_module_class_with_a_rule_is_one_operation_with_its_parameters_counted_once(registered):
    seen: list[Call] = []

    def rule(call: Call) -> Terms:
        seen.append(call)
        return Terms(macs={"matmul": call.input.numel * 4})

    register(registered, Fused, rule)
    model = nn.Sequential(nn.Linear(4, 4), Fused())
    analysis = analyze(model, (3, 5, 4))
    assert analysis.cost().macs_by["matmul"] == 3 * 5 * 4 * 4 and analysis.remainder == ()
    assert analysis.cost().params == sum(p.numel() for p in model.parameters())
    assert [type(c.module) for c in seen] == [Fused] and seen[0].input.shape == (1, 3, 5, 4)


def test_the_tools_own_rules_go_through_the_same_registry(registered):
    model = nn.Sequential(nn.Conv2d(3, 8, 3))
    exact = analyze(model, (3, 9, 9)).cost()
    assert register_rule(nn.Conv2d, MODULE_RULES[nn.Conv2d]) is MODULE_RULES[nn.Conv2d]
    register(registered, nn.Conv2d, lambda call: Terms(macs={"conv": 1}))
    assert analyze(model, (3, 9, 9)).cost().macs == 1 != exact.macs


def test_a_wrong_operator_a_rule_that_is_not_callable_and_a_bad_unit_are_refused_in_one_line(registered):
    with pytest.raises(InvalidInput, match=r"operator=3 is invalid"):
        register_rule(3, lambda call: None)
    with pytest.raises(InvalidInput, match=r"operator=int is a class but not an nn.Module"):
        register_rule(int, lambda call: None)
    with pytest.raises(InvalidInput, match=r"rule=None is not callable"):
        register_rule(torch.erf, None)  # type: ignore[arg-type]
    register(registered, torch.erf, lambda call: Terms(ops={"erf": 1}))
    with pytest.raises(InvalidInput) as error:
        analyze(Erf(), (3, 5, 5), strict=False)
    assert str(error.value).startswith("the rule for torch.erf returned the unit ops:erf; allowed:")
    assert len(str(error.value).splitlines()) == 1


def test_a_function_named_by_its_qualified_name(registered):
    """For a library that cannot be imported where the rule is registered (torchvision here)."""
    from tests.zoo_replicas import ConvNeXtBlock  # calls a torchvision-named, fx-wrapped function

    assert analyze(ConvNeXtBlock(8), (8, 4, 4)).remainder == ()  # the tool's rule, registered by name
    register(registered, "torchvision.ops.stochastic_depth.stochastic_depth", lambda call: None)
    remainder = analyze(ConvNeXtBlock(8), (8, 4, 4), strict=False).remainder
    assert [u.op for u in remainder] == ["torchvision.ops.stochastic_depth.stochastic_depth"]
