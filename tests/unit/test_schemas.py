"""Generated artefacts stay current: JSON Schemas per event type and the AsyncAPI document."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from topics import ALL_TOPICS, EVENT_MODELS
from topics.jsonschema import ASYNCAPI_FILE, SCHEMA_DIR, render_all, stale_files, write_all


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
