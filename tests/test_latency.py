"""The latency model: a plan's predicted latency is the plain network's plus what its placements
put in minus what they take out; entries are measured once per device, stored, and never used
for another device."""

from __future__ import annotations

import dataclasses
import json
import os
import random
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from examples.mynets import resnet_like
from ulsam_nas.analysis import analyze
from ulsam_nas.backbones import backbone_table
from ulsam_nas.cli import main
from ulsam_nas.errors import InvalidInput
from ulsam_nas.latency import (
    LatencyTable,
    MissingEntries,
    TimingPlan,
    device_table,
    predict_latency,
    this_device,
    time_calls,
)
from ulsam_nas.latency.table import (
    NetworkEntries,
    busy,
    capture_inputs,
    module_key,
    other_work,
    shape_text,
    take_out_key,
)

FAST = TimingPlan(rounds=3, round_seconds=0.0, min_calls=3, warm_seconds=0.0, warm_calls=2)
V1 = backbone_table("mobilenet_v1", 0.25, 32, 10, 1, "small")
V3 = backbone_table("mobilenet_v3_small", 0.5, 32, 10, 1, "small")


def measured(network, plans, runtime: str = "torch") -> LatencyTable:
    table = LatencyTable(this_device(runtime))
    table.measure(network, plans, FAST)
    return table


def test_a_plan_is_the_plain_network_plus_what_it_puts_in_minus_what_it_takes_out() -> None:
    plan = "insert@3:ulsam:groups=4,replace@9:eca,replace@8:se"
    table = measured(V1, [plan])
    entries = table.networks[V1.fingerprint]
    expected = entries.base
    for p in V1.resolve(plan):
        shape = V1.module_shape(p.index, p.action)
        expected += table.modules[module_key(p, shape)]
        if p.action == "insert":
            expected -= table.overheads[shape_text(shape)]
        else:
            expected -= entries.taken_out[take_out_key(p)]
    assert table.predict(V1, plan) == pytest.approx(expected)
    assert table.predict(V1, "") == entries.base
    # exactly the entries the plan needs, no more
    assert set(entries.taken_out) == {"replace@8", "replace@9"}
    assert len(table.modules) == 3 and len(table.overheads) == 1


def test_swap_replaces_the_gate_and_none_removes_it() -> None:
    table = measured(V3, ["swap@*:eca", "swap@4:none"])
    entries = table.networks[V3.fingerprint]
    gate = entries.taken_out["swap@4"]
    assert gate > 0
    assert table.predict(V3, "swap@4:none") == pytest.approx(entries.base - gate)
    eca = table.modules[module_key(V3.resolve("swap@4:eca")[0], V3.module_shape(4, "swap"))]
    assert table.predict(V3, "swap@4:eca") == pytest.approx(entries.base - gate + eca)


def test_a_taken_out_submodule_is_timed_on_the_input_it_gets_in_the_network() -> None:
    model = V1.build(None).eval()
    example = torch.randn(1, 1, 32, 32)
    inputs = capture_inputs(model, example, {V1.taken_out(9, "replace")})
    (x,) = inputs["features.layer9"]
    channels, height, width = V1.module_shape(9, "replace")
    assert tuple(x.shape) == (1, channels, height, width)
    assert V3.taken_out(4, "swap") == "features.layer4.block.se"
    assert isinstance(V3.build(None).get_submodule("features.layer4.block.se"), nn.Module)


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_predictions_are_additive_over_placements(data: st.DataObject) -> None:
    """Whatever the entries, a plan's change is the sum of its placements' changes."""
    rng = random.Random(data.draw(st.integers(0, 2**16)))
    table = LatencyTable(this_device())
    indices = data.draw(st.lists(st.sampled_from(V1.replaceable()), min_size=1, max_size=4, unique=True))
    plans = [f"replace@{i}:ulsam:groups={data.draw(st.sampled_from([1, 2, 4]))}" for i in indices]
    needs = table.missing(V1, [",".join(plans)])
    assert needs.base and not table.networks  # asking what is missing changes nothing
    entries = table.networks[V1.fingerprint] = NetworkEntries(base=rng.uniform(1, 5))
    for key in needs.taken_out:
        entries.taken_out[key] = rng.uniform(0, 1)
    for key in needs.modules:
        table.modules[key] = rng.uniform(0, 1)
    whole = table.predict(V1, ",".join(plans)) - entries.base
    parts = sum(table.predict(V1, plan) - entries.base for plan in plans)
    assert whole == pytest.approx(parts)


def test_measuring_again_measures_nothing_and_a_stored_table_predicts_the_same(tmp_path) -> None:
    plans = ["", "replace@7:ulsam:groups=4,replace@9:ulsam:groups=4", "insert@12:ulsam"]
    first, device = predict_latency(V1, plans, folder=tmp_path)
    table, path = device_table(device, tmp_path)
    assert path.is_file() and table.measure(V1, plans, FAST) == 0
    assert [table.predict(V1, p) for p in plans] == first
    assert LatencyTable.load(path) == table


def test_a_table_is_never_used_for_another_device(tmp_path) -> None:
    table = measured(V1, [""])
    elsewhere = dataclasses.replace(table.device, cpu="another CPU")
    foreign = LatencyTable(elsewhere, table.modules, table.overheads, table.networks)
    with pytest.raises(InvalidInput, match=r"another CPU.*cannot be extended here"):
        foreign.measure(V1, ["insert@3"], FAST)
    assert foreign.predict(V1, "") == table.predict(V1, "")  # its own entries still predict
    with pytest.raises(MissingEntries, match=r"insert@3.*no latency measured"):
        foreign.predict(V1, "insert@3")
    # a file under this device's name that holds another device's table is refused
    path = tmp_path / f"torch-{table.device.key()}.json"
    foreign.save(path)
    with pytest.raises(MissingEntries, match="another CPU"):
        device_table(table.device, tmp_path)


def test_threads_and_batch_are_part_of_the_device() -> None:
    assert this_device(threads=1) != this_device(threads=2)
    assert this_device(batch=1).key() != this_device(batch=8).key()
    assert "2 threads, batch 8" in this_device(threads=2, batch=8).text()
    with pytest.raises(InvalidInput, match="runtime 'tflite' is unknown"):
        this_device("tflite")
    with pytest.raises(InvalidInput, match="threads"):
        this_device(threads=0)


def test_onnxruntime_entries_come_from_an_exported_module() -> None:
    table = measured(V1, ["replace@9:ulsam:groups=4"], runtime="onnxruntime")
    assert table.device.runtime == "onnxruntime"
    assert table.predict(V1, "replace@9:ulsam:groups=4") > 0
    assert all(v > 0 for v in table.modules.values())


def test_traced_networks_take_out_the_submodule_at_the_position() -> None:
    analysis = analyze(resnet_like(width=8), (3, 16, 16))
    plan = "replace@layer2.1:eca,insert@layer1.0:ulsam:groups=2"
    table = measured(analysis, [plan])
    assert set(table.networks[analysis.fingerprint].taken_out) == {
        take_out_key(p) for p in analysis.resolve(plan) if p.action == "replace"
    }
    entries = table.networks[analysis.fingerprint]
    assert entries.base > 0 and all(v > 0 for v in entries.taken_out.values())
    assert table.predict(analysis, plan) == pytest.approx(
        entries.base + sum(table.change(analysis, p) for p in analysis.resolve(plan))
    )
    # another module tree is another network
    assert analyze(resnet_like(width=16), (3, 16, 16)).fingerprint != analysis.fingerprint


def test_an_older_or_broken_table_file_is_refused(tmp_path) -> None:
    table = measured(V1, [""])
    data = table.to_json()
    path = tmp_path / "t.json"
    path.write_text(json.dumps({**data, "format": 0}))
    with pytest.raises(InvalidInput, match="format 0"):
        LatencyTable.load(path)
    path.write_text(json.dumps({**data, "modules": 3}))
    with pytest.raises(InvalidInput, match="not a latency table"):
        LatencyTable.load(path)
    path.write_text("{")
    with pytest.raises(InvalidInput, match="not JSON"):
        LatencyTable.load(path)


def test_a_submodule_called_with_keywords_cannot_be_timed_alone() -> None:
    class Keyword(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = nn.Identity()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(input=x)

    with pytest.raises(InvalidInput, match="inner is called with keyword"):
        capture_inputs(Keyword(), torch.zeros(1), {"inner"})


def test_interleaved_timing_reports_each_call() -> None:
    found = time_calls({"a": lambda: sum(range(100)), "b": lambda: None}, FAST)
    assert set(found) == {"a", "b"} and all(v >= 0 for v in found.values())


# -- the command line -------------------------------------------------------------------------------
V1_ARGS = ["--width-mult", "0.25", "--resolution", "32", "--in-channels", "1", "--num-classes", "10"]


def test_cost_predicts_a_plans_latency_and_stores_the_table(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("ULSAM_NAS_CACHE", str(tmp_path))
    argv = ["cost", "--backbone", "mobilenet_v1", *V1_ARGS, "--stem", "small", "--plan", "replace@9:ulsam"]
    assert main([*argv, "--latency", "torch", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)["latency"]
    assert found["this_machine"] and found["entries_measured_now"] == 3  # the plain network, layer 9, ULSAM
    assert found["predicted_ms"] == pytest.approx(found["plain_ms"] + found["change_ms"])
    assert Path(found["table"]).parent == tmp_path / "latency"
    assert main([*argv, "--latency", "torch"]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.startswith("  latency ") and "PyTorch eager" in line and "measured now" not in line


def test_a_traced_model_and_onnxruntime(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("ULSAM_NAS_CACHE", str(tmp_path))
    argv = ["cost", "--model", "examples.mynets:resnet_like", "--input-size", "3,16,16"]
    assert main([*argv, "--plan", "replace@layer2.1:eca", "--latency", "onnxruntime", "--threads", "2"]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert "ONNX Runtime" in line and "2 threads" in line


def test_another_devices_table_only_predicts_and_says_whose_it_is(tmp_path, capsys) -> None:
    table = measured(V1, ["", "replace@9:ulsam"])
    foreign = dataclasses.replace(table, device=dataclasses.replace(table.device, cpu="a phone's CPU"))
    path = tmp_path / "phone.json"
    foreign.save(path)
    argv = ["cost", "--backbone", "mobilenet_v1", *V1_ARGS, "--stem", "small", "--latency", "torch"]
    assert main([*argv, "--plan", "replace@9:ulsam", "--latency-table", str(path)]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert "a phone's CPU (a table of another device" in line
    assert main([*argv, "--plan", "replace@11:ulsam", "--latency-table", str(path)]) == 2
    error = capsys.readouterr().err
    assert "no latency measured" in error and len(error.strip().splitlines()) == 1


def test_the_overhead_table_gets_a_latency_column(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("ULSAM_NAS_CACHE", str(tmp_path))
    shape = ["--channels", "32", "--height", "8", "--width", "8"]
    assert main(["table", "--modules", "ulsam,eca", *shape, "--latency", "torch", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [set(r) >= {"latency_ms"} for r in doc["rows"]] == [True, True]
    assert doc["latency"]["entries_measured_now"] == 3  # two modules and the call overhead
    assert main(["table", "--modules", "ulsam,eca", *shape, "--latency", "torch"]) == 0
    assert "Latency (ms)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["cost", "--backbone", "resnet18", "--threads", "2"], "--threads applies to --latency"),
        (["table", "--batch", "4"], "--batch applies to --latency"),
        (["cost", "ulsam", "--latency", "torch"], "a module's latency at a shape is a column"),
        (["cost", "--backbone", "resnet18", "--latency", "torch", "--threads", "0"], "threads"),
    ],
)
def test_bad_latency_arguments_get_one_line_and_status_2(argv, message, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        code = main(argv)
        raise SystemExit(code)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1


def test_a_table_measured_beside_other_work_says_so() -> None:
    cores = os.cpu_count() or 1
    quiet = (1000.0, 1000.0 - 100.0 / cores)  # 100 ticks of one core's work spread over all
    assert other_work((0.0, 0.0), (100.0 * cores, 100.0 * cores - 100.0), threads=1) == pytest.approx(0.0)
    assert other_work((0.0, 0.0), (100.0 * cores, 0.0), threads=1) == pytest.approx(cores - 1)
    assert other_work(None, quiet, threads=1) == 0.0
    table = measured(V1, [""])
    assert table.other_work >= 0.0
    table.other_work = 0.0
    assert busy(table) == ""
    table.other_work = 1.5
    assert "other work kept about 1.5 of" in busy(table)
    assert LatencyTable.from_json(table.to_json()).other_work == 1.5
