"""A latency model per device: what each operation a plan changes costs in time, measured once,
and a plan's predicted latency as arithmetic on those entries (no network built).

The entries of a :class:`LatencyTable` (one device):

* per network (its ``fingerprint``): the plain network measured whole (``base``), and each
  submodule a placement can take out (a replaced layer, a swapped gate) measured alone on the
  input it gets inside the network;
* per attention module, options and input shape: the module measured alone;
* per input shape: the overhead of calling anything alone (an identity module through the same
  runtime), which a module measured alone carries and an inserted one does not add inside the
  network (ONNX Runtime's per-session-call cost, mostly).

A plan's latency is ``base + Σ (module − overhead) − Σ (taken out − overhead)`` over its
placements, mirroring the closed-form cost (``networks.plan_cost``): the plain network's, minus
what the plan takes out, plus what it puts in.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ulsam_nas.attention import create_attention
from ulsam_nas.errors import InvalidInput
from ulsam_nas.latency.device import Device, this_device
from ulsam_nas.latency.runtimes import Inputs, runner, torch_threads
from ulsam_nas.latency.timing import QUICK, TimingPlan, time_calls
from ulsam_nas.networks.core import Network
from ulsam_nas.networks.plan import REMOVE, TAKE_OUT, Placement, PlanLike
from ulsam_nas.output import write_atomic

FORMAT = 1  # bumped when an entry's meaning changes: an older table is refused, not misread


def shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def module_key(placement: Placement, shape: tuple[int, int, int]) -> str:
    """The entry of a placed module: its name, its resolved options and its input shape."""
    options = ",".join(f"{k}={v!r}" for k, v in sorted(placement.config.items()))
    return f"{placement.module}|{options}|{shape_text(shape)}"


@dataclass
class NetworkEntries:
    """One network's entries (milliseconds): the plain network whole, and what each placement
    takes out (``"replace@7"``)."""

    base: float | None = None
    taken_out: dict[str, float] = field(default_factory=dict)


class MissingEntries(InvalidInput):
    """A prediction needs an entry the table does not have (and cannot measure: another device)."""


@dataclass
class LatencyTable:
    """Measured latencies on one device, and predictions from them."""

    device: Device
    modules: dict[str, float] = field(default_factory=dict)
    overheads: dict[str, float] = field(default_factory=dict)
    networks: dict[str, NetworkEntries] = field(default_factory=dict)
    # The most cores other work kept busy while entries were measured (it slows what is timed:
    # a table measured on a busy machine says so).
    other_work: float = 0.0

    # -- predicting ---------------------------------------------------------------------------
    def predict(self, network: Network, plan: PlanLike = None) -> float:
        """The plan's latency in milliseconds on this table's device (every entry it needs must
        be in the table: ``measure`` first, or ``MissingEntries`` names what is missing)."""
        entries = self._known(network)
        if entries.base is None:
            raise MissingEntries(f"no latency of {network.name} on {self.device.text()}: measure it first")
        return entries.base + sum(self.change(network, p) for p in network.resolve(plan))

    def change(self, network: Network, placement: Placement) -> float:
        """What one resolved placement adds (ms): its module (less the overhead of a call alone,
        for an insert) minus what it takes out."""
        taken = 0.0
        if placement.action in TAKE_OUT:
            taken = self._entry(
                self._known(network).taken_out, take_out_key(placement), network.name, placement
            )
        if placement.module == REMOVE:
            return -taken
        shape = network.module_shape(placement.index, placement.action)
        added = self._entry(self.modules, module_key(placement, shape), network.name, placement)
        if placement.action == "insert":
            added -= self._entry(self.overheads, shape_text(shape), network.name, placement)
        return added - taken

    def added(self, placement: Placement, shape: tuple[int, int, int]) -> float:
        """What a module at ``shape`` adds to a network's latency (ms): measured alone, less the
        overhead of a call alone."""
        module = self._entry(self.modules, module_key(placement, shape), "a network", placement)
        return module - self._entry(self.overheads, shape_text(shape), "a network", placement)

    def _entry(self, entries: dict[str, float], key: str, network: str, placement: Placement) -> float:
        try:
            return entries[key]
        except KeyError:
            raise MissingEntries(
                f"{placement.text()} on {network}: no latency measured for {key} on {self.device.text()}"
            ) from None

    def _known(self, network: Network) -> NetworkEntries:
        """The network's entries (empty when none were measured; the table is not changed)."""
        return self.networks.get(network.fingerprint) or NetworkEntries()

    def _network(self, network: Network) -> NetworkEntries:
        return self.networks.setdefault(network.fingerprint, NetworkEntries())

    # -- measuring ----------------------------------------------------------------------------
    def missing(self, network: Network, plans: Iterable[PlanLike]) -> Needs:
        """What predicting ``plans`` on ``network`` needs that the table lacks."""
        entries = self._known(network)
        needs = Needs(base=entries.base is None)
        for plan in plans:
            for p in network.resolve(plan):
                if p.action in TAKE_OUT and take_out_key(p) not in entries.taken_out:
                    needs.taken_out[take_out_key(p)] = (p.index, p.action)
                if p.module == REMOVE:
                    continue
                shape = network.module_shape(p.index, p.action)
                if module_key(p, shape) not in self.modules:
                    needs.modules[module_key(p, shape)] = (p, shape)
                if p.action == "insert" and shape_text(shape) not in self.overheads:
                    needs.overheads[shape_text(shape)] = shape
        return needs

    def measure(self, network: Network, plans: Iterable[PlanLike], timing: TimingPlan = QUICK) -> int:
        """Measure every entry ``plans`` need that the table lacks, on this machine (which must
        be the table's device); returns how many entries were measured."""
        return self._measure(network, self.missing(network, plans), timing)

    def measure_modules(
        self, placed: Iterable[tuple[Placement, tuple[int, int, int]]], timing: TimingPlan = QUICK
    ) -> int:
        """Measure resolved placements' modules at their shapes (and a call's overhead there)
        that the table lacks; returns how many entries were measured."""
        needs = Needs()
        for placement, shape in placed:
            if module_key(placement, shape) not in self.modules:
                needs.modules[module_key(placement, shape)] = (placement, shape)
            if shape_text(shape) not in self.overheads:
                needs.overheads[shape_text(shape)] = shape
        return self._measure(None, needs, timing)

    def _measure(self, network: Network | None, needs: Needs, timing: TimingPlan) -> int:
        if needs.empty:
            return 0
        here = this_device(self.device.runtime, self.device.threads, self.device.batch)
        if here != self.device:
            raise InvalidInput(
                f"this latency table was measured on {self.device.text()}; this machine is "
                f"{here.text()}: it cannot be extended here"
            )
        calls = _calls(network, needs, self.device)
        before = cpu_times()
        with torch_threads(self.device.threads):
            found = time_calls(calls, timing)
        self.other_work = max(self.other_work, other_work(before, cpu_times(), self.device.threads))
        for (kind, key), value in found.items():
            if kind == "module":
                self.modules[key] = value
            elif kind == "overhead":
                self.overheads[key] = value
            elif network is not None and kind == "base":
                self._network(network).base = value
            elif network is not None:
                self._network(network).taken_out[key] = value
        return len(found)

    # -- storage ------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "device": vars(self.device),
            "other_work": self.other_work,
            "modules": dict(sorted(self.modules.items())),
            "overheads": dict(sorted(self.overheads.items())),
            "networks": {
                name: {"base": e.base, "taken_out": dict(sorted(e.taken_out.items()))}
                for name, e in sorted(self.networks.items())
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str = "latency table") -> LatencyTable:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise InvalidInput(f"{source} has format {found!r}; allowed: {FORMAT} (measure it again)")
        try:
            return cls(
                Device.from_dict(data["device"]),
                {str(k): float(v) for k, v in data["modules"].items()},
                {str(k): float(v) for k, v in data["overheads"].items()},
                {
                    str(name): NetworkEntries(
                        None if e["base"] is None else float(e["base"]),
                        {str(k): float(v) for k, v in e["taken_out"].items()},
                    )
                    for name, e in data["networks"].items()
                },
                float(data.get("other_work", 0.0)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise InvalidInput(f"{source} is not a latency table ({type(error).__name__}: {error})") from None

    def save(self, path: str | Path) -> None:
        write_atomic(path, json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        try:
            data = json.loads(Path(path).read_text())
        except OSError as error:
            raise InvalidInput(f"latency table {str(path)!r} cannot be read ({error.strerror})") from None
        except json.JSONDecodeError as error:
            raise InvalidInput(f"latency table {str(path)!r} is not JSON ({error})") from None
        return cls.from_json(data, f"latency table {str(path)!r}")


def cpu_times() -> tuple[float, float] | None:
    """(all, idle) CPU time of the machine so far (Linux's /proc/stat; None elsewhere)."""
    try:
        fields = [float(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    except (OSError, ValueError, IndexError):
        return None
    return sum(fields), fields[3] + fields[4]  # idle + iowait


def other_work(before: tuple[float, float] | None, after: tuple[float, float] | None, threads: int) -> float:
    """Cores kept busy by work other than the measurement between two ``cpu_times`` readings:
    the busy share of every core, less the ``threads`` the measurement ran on."""
    if before is None or after is None or after[0] <= before[0]:
        return 0.0
    busy_share = 1 - (after[1] - before[1]) / (after[0] - before[0])
    return max(0.0, busy_share * (os.cpu_count() or 1) - threads)


def busy(table: LatencyTable) -> str:
    """A warning when other work kept at least half a core busy while the table was measured."""
    if table.other_work < 0.5:
        return ""
    return (
        f" (measured while other work kept about {table.other_work:.1f} of {os.cpu_count() or 1} "
        "cores busy, which slows what is timed; delete the table file to measure again on a quiet "
        "machine)"
    )


def take_out_key(placement: Placement) -> str:
    return f"{placement.action}@{placement.index}"


@dataclass
class Needs:
    """Entries a table lacks: the base, taken-out submodules, modules at shapes, overheads."""

    base: bool = False
    taken_out: dict[str, tuple[int, str]] = field(default_factory=dict)
    modules: dict[str, tuple[Placement, tuple[int, int, int]]] = field(default_factory=dict)
    overheads: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.base or self.taken_out or self.modules or self.overheads)


def _calls(
    network: Network | None, needs: Needs, device: Device
) -> dict[tuple[str, str], Callable[[], object]]:
    """A call to time per missing entry (the plain model built once, its submodules' inputs
    captured in one forward pass)."""
    calls: dict[tuple[str, str], Callable[[], object]] = {}
    batch = device.batch
    if network is not None and (needs.base or needs.taken_out):
        torch.manual_seed(0)
        model = network.build(None).eval()
        example = torch.randn(batch, *network.input_size)
        if needs.base:
            calls["base", ""] = runner(device, model, (example,), f"{network.name}")
        paths = {key: network.taken_out(index, action) for key, (index, action) in needs.taken_out.items()}
        inputs = capture_inputs(model, example, set(paths.values()))
        for key, path in paths.items():
            what = f"{network.name}'s {path}"
            calls["taken_out", key] = runner(device, model.get_submodule(path), inputs[path], what)
    for key, (placement, shape) in needs.modules.items():
        torch.manual_seed(0)
        module = create_attention(placement.module, shape[0], **placement.config)
        calls["module", key] = runner(device, module, (torch.randn(batch, *shape),), placement.text())
    for key, shape in needs.overheads.items():
        calls["overhead", key] = runner(device, nn.Identity(), (torch.randn(batch, *shape),), "a call")
    return calls


def capture_inputs(model: nn.Module, example: torch.Tensor, paths: set[str]) -> dict[str, Inputs]:
    """The positional tensor inputs each submodule in ``paths`` gets in one forward pass."""
    found: dict[str, Inputs] = {}
    handles = []
    for path in paths:

        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], path: str = path) -> None:
            if kwargs or not all(isinstance(a, torch.Tensor) for a in args):
                raise InvalidInput(
                    f"{path} is called with keyword or non-tensor arguments; its latency cannot be "
                    "measured alone"
                )
            found.setdefault(path, tuple(a.detach().clone() for a in args))

        handles.append(model.get_submodule(path).register_forward_pre_hook(hook, with_kwargs=True))
    try:
        with torch.no_grad():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    unseen = sorted(paths - set(found))
    if unseen:
        raise InvalidInput(f"{unseen[0]} is not called in a forward pass; its latency cannot be measured")
    return found
