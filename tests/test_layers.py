"""The layers of flows/ hold: what each may import, and one line saying each module's job."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

FLOWS = REPO / "flows"
# Package prefix -> prefixes of flows' own modules it must not import (and whether Prefect
# is allowed). The engine and everything below it run without Prefect: validate, tests,
# benchmarks and a Dask worker use them directly.
FORBIDDEN = {
    "flows.stages": (
        "flows.engine",
        "flows.output",
        "flows.source",
        "flows.orchestration",
        "flows.cli",
    ),
    "flows.contracts": ("flows.engine", "flows.output", "flows.source", "flows.orchestration"),
    "flows.source": ("flows.engine", "flows.output", "flows.orchestration", "flows.cli"),
    "flows.output": ("flows.engine", "flows.orchestration", "flows.cli"),
    "flows.engine": ("flows.orchestration", "flows.cli", "flows.failures", "flows.options"),
}
NO_PREFECT = (
    "flows.stages",
    "flows.contracts",
    "flows.source",
    "flows.output",
    "flows.engine",
    "flows.models",
    "flows.langdetect_numpy",
    "flows.report",
)


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(FLOWS.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found.append((name, path))
    return found


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize(("name", "path"), _modules(), ids=[n for n, _ in _modules()])
def test_each_module_keeps_to_its_layer(name: str, path: Path) -> None:
    imported = _imports(path)
    for layer, forbidden in FORBIDDEN.items():
        if name == layer or name.startswith(layer + "."):
            bad = sorted(i for i in imported if i.startswith(forbidden))
            assert not bad, f"{name} imports {bad}"
    if name.startswith(NO_PREFECT):
        assert not any(i == "prefect" or i.startswith("prefect.") for i in imported), name


@pytest.mark.parametrize(("name", "path"), _modules(), ids=[n for n, _ in _modules()])
def test_each_module_opens_with_one_line_saying_its_job(name: str, path: Path) -> None:
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")), clean=False)
    assert docstring, f"{name} has no docstring"
    first = docstring.split("\n\n", 1)[0]
    assert "\n" not in first.strip(), f"{name}: the first paragraph is not one line: {first!r}"
