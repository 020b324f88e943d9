"""Generation and staleness check of `topics/schemas/<EventType>.json`."""

from __future__ import annotations

import json
from pathlib import Path

from topics import asyncapi
from topics.events import EVENT_MODELS

SCHEMA_DIR = Path(__file__).parent / "schemas"
ASYNCAPI_FILE = "asyncapi.json"


def render_all() -> dict[str, str]:
    """File name → text: one JSON Schema per event type, and the AsyncAPI document."""
    rendered = {}
    for name, model in sorted(EVENT_MODELS.items()):
        schema = model.model_json_schema(mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"urn:erp-pipeline:event:{name}:v1"
        rendered[f"{name}.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    rendered[ASYNCAPI_FILE] = json.dumps(asyncapi.render(), indent=2, sort_keys=True) + "\n"
    return rendered


def write_all(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write every schema file (and remove ones of event types that no longer exist)."""
    directory.mkdir(parents=True, exist_ok=True)
    rendered = render_all()
    for stale in directory.glob("*.json"):
        if stale.name not in rendered:
            stale.unlink()
    written = []
    for name, text in rendered.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale_files(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names of schema files that are missing, outdated or no longer generated."""
    rendered = render_all()
    problems = [
        name
        for name, text in rendered.items()
        if not (directory / name).exists() or (directory / name).read_text(encoding="utf-8") != text
    ]
    problems += [p.name for p in directory.glob("*.json") if p.name not in rendered]
    return sorted(problems)
