"""Bad input, end to end through the command line: exit status 2, one line on stderr naming the
bad value, no traceback, no password, and nothing written.  The study and space loaders are
fuzzed: no document makes them raise anything but InvalidInput."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_search import SPACE, small_study
from ulsam_nas import network_cost
from ulsam_nas.cli import main
from ulsam_nas.errors import InvalidInput
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
