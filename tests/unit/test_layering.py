"""The folders are the dependency graph: topics ← pipeline ← consumers; rules and replay stay pure.

- `topics/` imports nothing of ours;
- `pipeline/` never imports `consumers/`;
- `pipeline/rules/` and `pipeline/replay/` import no I/O library (faust, aiokafka, psycopg...)
  and, of ours, only `topics/`, `pipeline/rules/` (and replay, `pipeline/replay/`): so they
  cannot load an I/O library through another module of ours either;
- only `pipeline/processor/` imports faust (or mode, its runtime);
- psycopg only under `consumers/`.

Relative imports are resolved against the module's package, and imports inside functions
count as much as those at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
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
#: What of ours each pure folder may import (as module-name prefixes).
PURE_MAY_IMPORT = {
    "rules": ("topics", "pipeline.rules"),
    "replay": ("topics", "pipeline.rules", "pipeline.replay"),
}


def _package_of(relative: Path) -> list[str]:
    """The package a module's relative imports start from (its folder, for `__init__` too)."""
    return list(relative.parts[:-1])


def imports_of(source: str, relative: Path = Path("x.py")) -> set[str]:
    """The full names of the modules a module imports (relative imports resolved)."""
    found = set()
    package = _package_of(relative)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            if node.module:
                found.add(module)
            else:  # `from . import x`: x is a module of the package
                found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _top(names: set[str]) -> set[str]:
    return {name.split(".")[0] for name in names}


def violations(relative: Path, imports: set[str]) -> list[str]:
    """The layering rules a module at `relative` (e.g. `pipeline/rules/machine.py`) breaks."""
    top, *rest = relative.parts
    sub = rest[0] if len(rest) > 1 else ""
    tops = _top(imports)
    broken = []
    if top == "topics" and tops & (OURS - {"topics"}):
        broken.append("topics/ imports nothing else of ours")
    if top == "pipeline" and "consumers" in tops:
        broken.append("pipeline/ never imports consumers/")
    if top == "pipeline" and sub in PURE_MAY_IMPORT:
        if tops & IO_LIBRARIES:
            broken.append(f"pipeline/{sub}/ is pure: no {sorted(tops & IO_LIBRARIES)}")
        allowed = PURE_MAY_IMPORT[sub]
        ours = sorted(
            name
            for name in imports
            if name.split(".")[0] in OURS
            and not any(name == a or name.startswith(f"{a}.") for a in allowed)
        )
        if ours:
            broken.append(f"pipeline/{sub}/ is pure: of ours only {allowed}, not {ours}")
    if tops & FAUST and (top, sub) != ("pipeline", "processor"):
        broken.append("only pipeline/processor/ imports faust")
    if tops & PSYCOPG and top != "consumers":
        broken.append("psycopg only under consumers/")
    return broken


def _modules() -> list[Path]:
    return sorted(p for package in OURS for p in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_keeps_to_its_layer(path: Path) -> None:
    relative = path.relative_to(ROOT)
    imports = imports_of(path.read_text(encoding="utf-8"), relative)
    assert violations(relative, imports) == []


@pytest.mark.parametrize(
    ("module", "source", "rule"),
    [
        ("pipeline/rules/machine.py", "import faust", "pipeline/rules/ is pure"),
        ("pipeline/rules/machine.py", "from aiokafka import X", "pipeline/rules/ is pure"),
        ("pipeline/rules/machine.py", "from pipeline import kafka", "pipeline/rules/ is pure"),
        ("pipeline/rules/machine.py", "from pipeline.processor import app", "is pure"),
        ("pipeline/rules/machine.py", "from ..processor import app", "is pure"),
        ("pipeline/rules/machine.py", "from .. import kafka", "is pure"),
        ("pipeline/replay/audit.py", "import psycopg", "pipeline/replay/ is pure"),
        ("pipeline/replay/audit.py", "from pipeline.settings import Settings", "is pure"),
        ("pipeline/kafka.py", "import faust", "only pipeline/processor/ imports faust"),
        ("consumers/export/worker.py", "import faust", "only pipeline/processor/"),
        ("pipeline/processor/store.py", "import psycopg", "psycopg only under consumers/"),
        ("pipeline/processor/app.py", "from consumers.worker import db", "never imports"),
        ("pipeline/processor/store.py", "from ...consumers.worker import db", "never imports"),
        ("topics/codec.py", "from pipeline.settings import Settings", "topics/ imports nothing"),
        ("topics/codec.py", "from ..pipeline import settings", "topics/ imports nothing"),
    ],
)
def test_the_check_catches_a_broken_layer(module: str, source: str, rule: str) -> None:
    broken = violations(Path(module), imports_of(source, Path(module)))
    assert any(rule in b for b in broken), broken


def test_the_check_sees_imports_inside_functions_and_resolves_relative_ones() -> None:
    source = "def f():\n    import faust\n    from psycopg import sql\nfrom .state import S\n"
    found = imports_of(source, Path("pipeline/rules/machine.py"))
    assert found == {"faust", "psycopg", "pipeline.rules.state"}
    assert imports_of("from . import derive", Path("pipeline/rules/machine.py")) == {
        "pipeline.rules.derive"
    }
