"""Generated artefacts stay current: JSON Schemas per event type and the AsyncAPI document."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.contract_cases import ACCEPTED, REFUSED, Case, case_id, with_value
from tests.support.events import valid_examples
from topics import ALL_TOPICS, EVENT_MODELS
from topics.jsonschema import ASYNCAPI_FILE, SCHEMA_DIR, render_all, stale_files, write_all

EXAMPLES = valid_examples()


def test_committed_schema_files_are_current() -> None:
    assert stale_files() == [], "run `erp-pipeline schemas`"


def test_staleness_is_detected(tmp_path: Path) -> None:
    write_all(tmp_path)
    assert stale_files(tmp_path) == []
    (tmp_path / "ItemRejected.json").write_text("{}")
    (tmp_path / "Obsolete.json").write_text("{}")
    (tmp_path / "ItemAccepted.json").unlink()
    assert stale_files(tmp_path) == ["ItemAccepted.json", "ItemRejected.json", "Obsolete.json"]


@pytest.mark.parametrize("event_type", sorted(EVENT_MODELS))
def test_one_json_schema_per_event_type(event_type: str) -> None:
    schema = json.loads((SCHEMA_DIR / f"{event_type}.json").read_text())
    assert schema["properties"]["event_type"]["const"] == event_type
    assert schema["additionalProperties"] is False


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [node["$ref"]] if "$ref" in node else [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_asyncapi_document_covers_every_topic_and_event_and_its_refs_resolve() -> None:
    document = json.loads(render_all()[ASYNCAPI_FILE])
    assert document["asyncapi"] == "3.0.0"
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {spec.name for spec in ALL_TOPICS}
    assert set(document["components"]["messages"]) == set(EVENT_MODELS)
    for ref in _refs(document):
        assert _resolve(document, ref) is not None, ref
    actions = {
        op["channel"]["$ref"].split("/")[-1]: op["action"] for op in document["operations"].values()
    }
    assert actions["erp_submissions"] == "receive" and actions["erp_status"] == "send"


# --- the JSON Schemas refuse what the models refuse, wherever a schema can say it ------------
# `jsonschema` is not a dependency; these few keywords are all the generated schemas use.


def _ecma(pattern: str) -> str:
    """`pattern` for Python's `re` with ECMA-262's meaning (what JSON Schema says patterns are).

    A final `$` is the end of the input in ECMA-262 (and in pydantic's Rust regex); in Python
    it also matches before a final newline.
    """
    return (
        pattern[:-1] + r"\Z" if pattern.endswith("$") and not pattern.endswith("\\$") else pattern
    )


def _accepts(schema: dict[str, Any], node: Any, value: Any) -> bool:
    """Whether `value` satisfies `node` of `schema` (refs resolved within `schema`)."""
    if "$ref" in node:
        return _accepts(schema, _resolve(schema, node["$ref"]), value)
    if "anyOf" in node and not any(_accepts(schema, n, value) for n in node["anyOf"]):
        return False
    if "const" in node and value != node["const"]:
        return False
    if "enum" in node and value not in node["enum"]:
        return False
    kinds = {
        "string": str,
        "integer": int,
        "boolean": bool,
        "object": dict,
        "array": list,
        "null": type(None),
    }
    if "type" in node:
        kind = kinds[node["type"]]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            return False
    if isinstance(value, str):
        if len(value) > node.get("maxLength", len(value)):
            return False
        if len(value) < node.get("minLength", 0):
            return False
        if "pattern" in node and not re.search(_ecma(node["pattern"]), value):
            return False
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if is_int and not node.get("minimum", value) <= value <= node.get("maximum", value):
        return False
    if isinstance(value, list) and "items" in node:
        return all(_accepts(schema, node["items"], item) for item in value)
    if isinstance(value, dict) and "properties" in node:
        properties = node["properties"]
        if any(name not in value for name in node.get("required", [])):
            return False
        if node.get("additionalProperties") is False and set(value) - set(properties):
            return False
        return all(_accepts(schema, properties[k], v) for k, v in value.items() if k in properties)
    return True


def _schema_accepts(event: dict[str, Any]) -> bool:
    schema = json.loads((SCHEMA_DIR / f"{event['event_type']}.json").read_text())
    return _accepts(schema, schema, event)


@pytest.mark.parametrize("event_type", sorted(EVENT_MODELS))
def test_each_schema_accepts_its_valid_example(event_type: str) -> None:
    assert _schema_accepts(EXAMPLES[event_type])


@pytest.mark.parametrize("case", [c for c in REFUSED if c.schema], ids=case_id)
def test_the_json_schema_refuses_what_the_model_refuses(case: Case) -> None:
    assert not _schema_accepts(with_value(EXAMPLES[case.event_type], case.path, case.value))


@pytest.mark.parametrize("case", [c for c in REFUSED if not c.schema] + ACCEPTED, ids=case_id)
def test_the_json_schema_never_refuses_more_than_the_model(case: Case) -> None:
    # what only the models can check (a mail library's reading, an instant, a lone surrogate):
    # the schema is looser there, never stricter, so a schema-valid event may still be refused
    assert _schema_accepts(with_value(EXAMPLES[case.event_type], case.path, case.value))
