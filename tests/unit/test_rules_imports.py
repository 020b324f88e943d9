"""The rules import neither faust nor aiokafka nor psycopg; only the wiring modules do."""

from __future__ import annotations

import ast
from pathlib import Path

PIPELINE = Path(__file__).resolve().parents[2] / "pipeline"
WIRING = {"app.py", "runtime.py", "worker.py", "observability.py"}
FORBIDDEN = {"faust", "mode", "aiokafka", "psycopg"}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_rules_are_free_of_io_libraries() -> None:
    for path in PIPELINE.glob("*.py"):
        if path.name not in WIRING:
            assert not _imports(path) & FORBIDDEN, path.name


def test_only_the_app_imports_faust() -> None:
    for path in PIPELINE.glob("*.py"):
        if path.name != "app.py":
            assert "faust" not in _imports(path), path.name
