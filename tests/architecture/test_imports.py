"""Imports flow one way (STYLE.md): transforms/ is pure and knows nothing of flows/; the rooms of flows/
do not reach into the run that orchestrates them, and sources/ and xero/ never import each other.

Every module's imports are read from its source (ast), module-level and inside functions alike."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

# room -> the packages it may not import
FORBIDDEN = {
    "transforms": ("flows",),
    "flows.sources": ("flows.run", "flows.xero", "flows.warehouse", "flows.reports"),
    "flows.xero": ("flows.run", "flows.sources", "flows.reports"),
    "flows.warehouse": ("flows.run", "flows.sources", "flows.xero", "flows.reports"),
    "flows.reports": ("flows.run", "flows.sources", "flows.xero"),
}
# transforms/ is pure: frames in, frames out
IMPURE = ("duckdb", "prefect", "httpx", "os", "pathlib", "datetime.datetime.now")


def _module(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


MODULES = sorted(p for d in ("flows", "transforms") for p in (REPO / d).rglob("*.py"))


def _violations(room: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in MODULES:
        module = _module(path)
        if module != room and not module.startswith(room + "."):
            continue
        for name in sorted(_imports(path)):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                found.append(f"{module} imports {name}")
    return found


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_a_room_imports_nothing_it_should_not(room):
    assert _violations(room, FORBIDDEN[room]) == []


def test_transforms_do_no_io_and_read_no_clock():
    assert _violations("transforms", IMPURE) == []


def test_the_rules_would_catch_a_bad_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from flows.run.publish import Run\n")
    assert "flows.run.publish" in _imports(bad)
