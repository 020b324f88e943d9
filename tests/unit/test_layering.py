"""The folders are the dependency graph: topics ← pipeline ← consumers; rules and replay stay pure.

- `topics/` imports nothing of ours;
- `pipeline/` never imports `consumers/`;
- `pipeline/rules/` and `pipeline/replay/` import no I/O library (faust, aiokafka, psycopg...);
- only `pipeline/processor/` imports faust (or mode, its runtime);
- psycopg only under `consumers/`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.paths import ROOT

IO_LIBRARIES = {
    "faust",
    "mode",
    "aiokafka",
    "psycopg",
    "psycopg_pool",
    "kafka",
    "smtplib",
    "aiohttp",
    "confluent_kafka",
}
FAUST = {"faust", "mode"}
PSYCOPG = {"psycopg", "psycopg_pool"}
OURS = {"topics", "pipeline", "consumers"}


def imports_of(source: str) -> set[str]:
    """Top-level package names a module imports (absolute imports, anywhere in the module)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def violations(relative: Path, imports: set[str]) -> list[str]:
    """The layering rules a module at `relative` (e.g. `pipeline/rules/machine.py`) breaks."""
    top, *rest = relative.parts
    sub = rest[0] if len(rest) > 1 else ""
    broken = []
    if top == "topics" and imports & (OURS - {"topics"}):
        broken.append("topics/ imports nothing else of ours")
    if top == "pipeline" and "consumers" in imports:
        broken.append("pipeline/ never imports consumers/")
    if top == "pipeline" and sub in {"rules", "replay"} and imports & IO_LIBRARIES:
        broken.append(f"pipeline/{sub}/ is pure: no {sorted(imports & IO_LIBRARIES)}")
    if imports & FAUST and (top, sub) != ("pipeline", "processor"):
        broken.append("only pipeline/processor/ imports faust")
    if imports & PSYCOPG and top != "consumers":
        broken.append("psycopg only under consumers/")
    return broken


def _modules() -> list[Path]:
    return sorted(p for package in OURS for p in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_keeps_to_its_layer(path: Path) -> None:
    relative = path.relative_to(ROOT)
    assert violations(relative, imports_of(path.read_text(encoding="utf-8"))) == []


@pytest.mark.parametrize(
    ("module", "source", "rule"),
    [
        ("pipeline/rules/machine.py", "import faust", "pipeline/rules/ is pure"),
        ("pipeline/rules/machine.py", "from aiokafka import X", "pipeline/rules/ is pure"),
        ("pipeline/replay/audit.py", "import psycopg", "pipeline/replay/ is pure"),
        ("pipeline/kafka.py", "import faust", "only pipeline/processor/ imports faust"),
        ("consumers/export/worker.py", "import faust", "only pipeline/processor/"),
        ("pipeline/processor/app.py", "import psycopg", "psycopg only under consumers/"),
        ("pipeline/processor/app.py", "from consumers.worker import db", "never imports"),
        ("topics/codec.py", "from pipeline.settings import Settings", "topics/ imports nothing"),
    ],
)
def test_the_check_catches_a_broken_layer(module: str, source: str, rule: str) -> None:
    broken = violations(Path(module), imports_of(source))
    assert any(rule in b for b in broken), broken


def test_the_check_sees_imports_inside_functions() -> None:
    source = "def f():\n    import faust\n    from psycopg import sql\n"
    assert imports_of(source) == {"faust", "psycopg"}
