"""The folders are the dependency graph: topics ← pipeline ← consumers; rules stay pure."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Modules of pipeline/ allowed to import I/O libraries: the wiring, not the rules.
PIPELINE_WIRING = {"app.py", "runtime.py", "worker.py", "observability.py"}
IO_LIBRARIES = {
    "faust",
    "mode",
    "aiokafka",
    "psycopg",
    "psycopg_pool",
    "kafka",
    "smtplib",
    "aiohttp",
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", _modules("topics"), ids=lambda p: str(p.relative_to(ROOT)))
def test_topics_imports_nothing_else_of_ours(path: Path) -> None:
    assert not _imports(path) & {"pipeline", "consumers"}


@pytest.mark.parametrize("path", _modules("pipeline"), ids=lambda p: str(p.relative_to(ROOT)))
def test_pipeline_does_not_import_consumers_and_rules_stay_pure(path: Path) -> None:
    imports = _imports(path)
    assert "consumers" not in imports
    if path.name not in PIPELINE_WIRING:
        assert not imports & IO_LIBRARIES, f"{path.name} is a rule module and must stay pure"


def test_the_check_sees_imports() -> None:
    assert {"pydantic_settings", "ssl"} <= _imports(ROOT / "pipeline" / "settings.py")


@pytest.mark.parametrize("path", _modules("pipeline"), ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_app_imports_faust(path: Path) -> None:
    if path.name != "app.py":
        assert "faust" not in _imports(path)
