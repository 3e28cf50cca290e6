"""Bad input, end to end through the command line: exit status 2, one line on stderr naming the
bad value, no traceback, no password, and nothing written.  The study and space loaders are
fuzzed: no document makes them raise anything but InvalidInput."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.studies import SPACE, small_study
from ulsam_nas import network_cost
from ulsam_nas.attention import get_attention, list_attention
from ulsam_nas.cli import main
from ulsam_nas.errors import DefaultOptionInvalid, InvalidInput
from ulsam_nas.search.config import load_study_config
from ulsam_nas.search.space import load_space

STUDY = "name: t\nspace: space.yaml\nbudget: {mmacs: 12.5}\ntrials: 2\nproxy: {data: synthetic, epochs: 1}\n"


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


CASES = [
    # (what, study file text or None for the small study, extra arguments, expected words)
    ("malformed YAML", "name: [unclosed\n", [], "malformed YAML at line"),
    ("unknown key", STUDY + "colour: red\n", [], "unknown key 'colour'"),
    ("wrong type", STUDY.replace("trials: 2", "trials: many"), [], "trials"),
    ("budget below the cheapest", STUDY.replace("mmacs: 12.5", "mmacs: 1"), [], "cheapest configuration"),
    ("a missing data set", STUDY, ["--data", "/nonexistent/images"], "/nonexistent/images"),
    ("a malformed storage URL", STUDY, ["--storage", "nosuchdb://u:secret@host/x"], "cannot open storage"),
    (
        "an unreachable storage",
        STUDY,
        ["--storage", "postgresql://u:secret@127.0.0.1:1/x"],
        "cannot open storage postgresql://u:***@127.0.0.1:1/x",
    ),
    ("a space file that is missing", STUDY.replace("space.yaml", "gone.yaml"), [], "gone.yaml"),
]


@pytest.mark.parametrize(("what", "text", "extra", "words"), CASES, ids=[c[0] for c in CASES])
def test_search_refuses_bad_input_in_one_line_and_writes_nothing(tmp_path, capsys, what, text, extra, words):
    small_study(tmp_path)  # space.yaml
    (tmp_path / "study.yaml").write_text(text)
    before = _files(tmp_path)
    assert main(["search", str(tmp_path / "study.yaml"), "--quiet", *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "secret" not in err, err
    assert words in err
    assert _files(tmp_path) == before


def test_the_cheapest_cost_is_named_when_the_budget_is_below_it(tmp_path, capsys):
    small_study(tmp_path, budget=1)
    assert main(["search", str(tmp_path / "study.yaml")]) == 2
    # generated data are RGB 32×32, 10 classes: replacing layer 9 at α 0.25 is the cheapest
    cheapest = network_cost("mobilenet_v1", 0.25, "replace@9:ulsam:groups=1", 32, 10, 3, "small")
    assert f"{cheapest.macs / 1e6:.3f} MMACs" in capsys.readouterr().err


def test_groups_that_divide_no_channels_are_refused(tmp_path, capsys):
    (tmp_path / "space.yaml").write_text(SPACE.replace("groups: [1, 4]", "groups: [3]"))
    (tmp_path / "study.yaml").write_text(STUDY)
    assert main(["search", str(tmp_path / "study.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "groups 3 divides the channels of no position" in err


@pytest.mark.parametrize(
    "args",
    [
        ["best", "--storage", "postgresql://u:secret@127.0.0.1:1/x", "--study-name", "t"],
        ["report", "--storage", "postgresql://u:secret@127.0.0.1:1/x", "--study-name", "t"],
        ["best", "--storage", "nosuchdb://u:secret@h/x", "--study-name", "t"],
    ],
)
def test_reading_commands_never_print_the_password(capsys, args):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "secret" not in err and "Traceback" not in err


# -- fuzzing ---------------------------------------------------------------------------------
KEYS = [
    "name", "space", "budget", "mmacs", "mparams", "latency_ms", "convention", "objective", "sampler",
    "seed", "pruner", "proxy", "data", "epochs", "seeds", "train_images", "storage", "schedule", "rungs",
    "confirm", "top_k", "trials", "backbone", "stem", "width_mults", "positions", "index", "actions",
    "groups", "modules", "max_modules", "paper_plan", "heartbeat_interval", "grace_period", "x",
]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["mobilenet_v1", "ulsam", "insert", "replace", "small", "tpe", "exact", "synthetic"]),
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=6)
    ),
    max_leaves=20,
)


def _valid_space() -> dict:
    return yaml.safe_load(SPACE)


def _valid_study() -> dict:
    return yaml.safe_load(STUDY)


def _loads_or_refuses(load, path: Path) -> None:
    try:
        load(path)
    except InvalidInput as error:
        assert "\n" not in str(error)


FUZZ = settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(document=DOCUMENTS)
def test_fuzzed_documents_never_raise_but_invalid_input(tmp_path, document):
    path = tmp_path / "f.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    _loads_or_refuses(load_space, path)
    _loads_or_refuses(load_study_config, path)


@FUZZ
@given(text=st.text(max_size=200))
def test_fuzzed_text_never_raises_but_invalid_input(tmp_path, text):
    path = tmp_path / "f.yaml"
    path.write_text(text, encoding="utf-8")
    _loads_or_refuses(load_space, path)
    _loads_or_refuses(load_study_config, path)


@FUZZ
@given(key=st.sampled_from(sorted(_valid_space())), value=DOCUMENTS)
def test_a_valid_space_with_one_value_replaced_loads_or_is_refused(tmp_path, key, value):
    document = _valid_space() | {key: value}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    _loads_or_refuses(load_space, path)


@FUZZ
@given(
    key=st.sampled_from([*sorted(_valid_study()), "sampler", "schedule", "pruner", "objective"]),
    value=DOCUMENTS,
)
def test_a_valid_study_with_one_value_replaced_loads_or_is_refused(tmp_path, key, value):
    document = _valid_study() | {key: value}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    _loads_or_refuses(load_study_config, path)


def test_nothing_is_loaded_unsafely():
    """YAML through safe_load only; no pickle or torch.load of user files (numpy without pickles)."""
    package = Path(__file__).resolve().parent.parent / "ulsam_nas"
    source = "\n".join(p.read_text() for p in package.rglob("*.py"))
    for unsafe in ("yaml.load(", "yaml.unsafe_load", "yaml.full_load", "pickle.load", "torch.load("):
        assert unsafe not in source, unsafe
    assert "allow_pickle=False" in source


# -- values the user did not give -------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["table", "--channels", "90"], "groups=4 (the default) does not divide channels=90; allowed: "),
        (["table", "--channels", "8"], "reduction=16 (the default) is larger than channels=8; allowed: 1..8"),
        (["cost", "se", "--channels", "8"], "reduction=16 (the default) is larger than channels=8"),
        (["explain", "se", "--channels", "8", "--no-trace"], "reduction=16 (the default) is larger"),
        (["table", "--modules", "gc", "--channels", "8"], "ratio=1/16 (the default) leaves"),
    ],
)
def test_a_default_that_fails_is_named_with_its_flag(capsys, args, words):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err
    flag = "--" + words.split("=")[0].replace("_", "-")
    assert err.rstrip().endswith(f"pass {flag}"), err


def test_a_value_the_user_gave_is_not_called_a_default(capsys):
    assert main(["cost", "se", "--channels", "8", "--reduction", "16"]) == 2
    err = capsys.readouterr().err
    assert "reduction=16 is larger than channels=8" in err and "default" not in err and "pass" not in err


def test_a_default_in_a_plan_says_how_to_set_it_there(capsys):
    args = ["cost", "--backbone", "mobilenet_v1", "--width-mult", "0.25", "--plan", "insert@0:se"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "insert@0:se (at 8 channels): reduction=16 (the default) is larger than channels=8" in err
    assert (
        err.rstrip().endswith("set it in the plan: insert@0:se:reduction=VALUE") and "--reduction" not in err
    )


def test_the_table_without_ulsam_is_not_refused_for_ulsams_default(capsys):
    """ULSAM is only the yardstick of the normalized columns when it is not listed: where its
    default g cannot be built they are left out with a note, not the whole table refused."""
    assert main(["table", "--channels", "90", "--modules", "eca,se"]) == 0
    out = capsys.readouterr().out
    assert "norm." not in out and "Normalized columns are left out" in out and "groups=4 (the default)" in out
    assert main(["table", "--channels", "90", "--modules", "eca,se", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r["params_norm"] for r in rows] == [None, None] and rows[1]["params"] == 2 * 90 * (90 // 16)
    assert main(["table", "--channels", "90", "--modules", "eca,se,ulsam", "--groups", "3"]) == 0
    assert "Params norm." in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["table", "--modules", "se", "--kernel-size", "5"], "kernel_size=5"),
        (["table", "--modules", "se", "--groups", "8"], "groups=8"),
        (["table", "--modules", "ulsam", "--reduction", "8"], "reduction=8"),
        (["table", "--e-lambda", "0.001"], "e_lambda=1/1000"),
    ],
)
def test_an_option_no_listed_module_takes_is_refused(capsys, args, option):
    """One rule for every option (``--kernel-size`` was silently ignored, ``--groups`` refused)."""
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{option} applies to none of the listed modules" in err, err


@pytest.mark.parametrize("key", list_attention())
def test_every_modules_failing_defaults_are_named(key):
    """For each module, on every small channel count where its defaults fail, the failure names
    the option as a default (a failure about the channels themselves names no option)."""
    spec = get_attention(key)
    for channels in range(1, 17):
        try:
            spec.make_config(channels)
        except DefaultOptionInvalid as error:
            assert f"{error.option}=" in str(error) and "(the default)" in str(error)
        except InvalidInput as error:
            assert str(error).startswith("channels="), str(error)
