"""The package stays readable: no module over 500 lines and no function over 80 (counted with
ast, templates aside), so each file keeps one responsibility a reader can take in; and its
imports form layers without cycles, so each package can be read without those above it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ulsam_nas"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80


def function_lengths(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        (node.name, (node.end_lineno or node.lineno) - node.lineno + 1)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_over_500_lines_and_no_function_over_80(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.name} has {lines} lines"
    long = [(name, n) for name, n in function_lengths(path) if n > MAX_FUNCTION_LINES]
    assert not long, f"{path.name}: functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_the_limits_are_measured_on_the_package():
    assert len(MODULES) > 40  # the glob found the package, not an empty folder
    sample = function_lengths(PACKAGE / "search" / "worker.py")
    assert any(name == "run" and n > 10 for name, n in sample)


# -- the import graph -----------------------------------------------------------------------------
# Packages from the bottom up: a module may import from its own package and from those below it,
# never from one above (the cost formulas know nothing of networks, the network sources nothing
# of counters or the search).  Packages on one line are siblings and may not import each other.
LAYERS = [
    ["errors"],
    ["latex"],
    ["output"],
    ["cost"],
    ["attention"],
    ["tables"],
    ["networks"],
    ["backbones", "analysis"],
    ["verify", "latency"],
    ["search"],
    ["reporting"],
    [""],  # the package's own __init__: the public names
    ["cli"],
    ["__main__"],  # ``python -m ulsam_nas``
]
RANK = {package: rank for rank, packages in enumerate(LAYERS) for package in packages}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


NAMES = {module_name(p): p for p in MODULES}


def imports_of(name: str) -> set[str]:
    """The package modules ``name`` imports, at any depth of its code (lazy imports count): ``from
    P import n`` is an import of the module P.n where that is one, else of P."""
    tree = ast.parse(NAMES[name].read_text(encoding="utf-8"))
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        for inner in ast.walk(node)
    }  # imports for annotations only never run
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in NAMES}
        elif isinstance(node, ast.ImportFrom) and node.module in NAMES and not node.level:
            for alias in node.names:
                found.add(
                    f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in NAMES else node.module
                )
    return found - {name}


def package_of(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_import_runs_up_the_layers_or_across_siblings():
    assert set(RANK) >= {package_of(n) for n in NAMES}, "a new package needs a place in LAYERS"
    wrong = [
        f"{name} imports {target}"
        for name in sorted(NAMES)
        for target in sorted(imports_of(name))
        if package_of(name) != package_of(target) and RANK[package_of(target)] >= RANK[package_of(name)]
    ]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle():
    graph = {name: imports_of(name) for name in NAMES}
    cycles = []
    state: dict[str, int] = {}  # 1: on the path being walked, 2: done

    def walk(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                cycles.append(" → ".join([*path[path.index(target) :], target]))
            elif target not in state:
                walk(target, [*path, target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            walk(name, [name])
    assert not cycles, "\n".join(cycles)


def test_the_import_checks_see_a_cycle_and_an_upward_import():
    # The checks read real imports: analysis.analysis imports the Network core, lazily or not.
    assert "ulsam_nas.networks.core" in imports_of("ulsam_nas.analysis.analysis")
    assert RANK["networks"] < RANK["analysis"] < RANK["search"]
