"""The app's record handling with the table and the producer replaced by plain objects."""

from __future__ import annotations

import json
from typing import Any

import pytest

from consumers import sample_events as se
from pipeline import app as app_module
from pipeline.app import build_app
from pipeline.refusals import Record
from pipeline.settings import Settings
from tests.unit.builders import directory

SUBMISSIONS = "erp.submissions"
DECISIONS = "erp.decisions"


class Harness:
    """A processor whose table is a dict and whose publish appends to a list."""

    def __init__(self) -> None:
        self.processor = build_app(
            Settings(kafka_bootstrap_servers="127.0.0.1:1", processor_store="memory")
        )
        self.processor.items = {}  # type: ignore[assignment]
        self.processor.directory = directory()
        self.published: list[Any] = []
        self.offset = 0

        async def publish(event: Any) -> None:
            self.published.append(event)

        async def synced(timeout_s: float = 0) -> bool:
            return True

        self.processor.publish = publish  # type: ignore[method-assign]
        self.processor.replicas[0].sync = synced  # type: ignore[method-assign]

    async def send(self, topic: str, value: bytes | dict[str, Any]) -> list[Any]:
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        self.offset += 1
        before = len(self.published)
        await self.processor.handle(Record(topic, 0, self.offset, b"k", raw))
        return self.published[before:]


@pytest.fixture
def harness() -> Harness:
    return Harness()


async def test_bad_bytes_become_a_dead_letter(harness: Harness) -> None:
    (dead,) = await harness.send(SUBMISSIONS, b"\x00not json")
    assert dead.event_type == "EventRefused" and dead.payload.stage == "decode"


async def test_wrong_topic_event_is_a_schema_refusal(harness: Harness) -> None:
    (dead,) = await harness.send(DECISIONS, se.project_submitted())
    assert dead.payload.stage == "schema"


async def test_state_is_stored_and_duplicates_dropped(harness: Harness) -> None:
    raw = se.project_submitted()
    (status,) = await harness.send(SUBMISSIONS, raw)
    assert status.payload.status == "ready_to_export"
    assert await harness.send(SUBMISSIONS, raw) == []
    assert len(harness.processor.items) == 1


async def test_unexpected_error_in_rules_is_dead_lettered(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> Any:
        raise KeyError("boom")

    monkeypatch.setattr(app_module, "react", broken)
    (dead,) = await harness.send(SUBMISSIONS, se.project_submitted())
    assert dead.payload.stage == "business_rule" and "boom" in dead.payload.error
    monkeypatch.undo()
    (status,) = await harness.send(SUBMISSIONS, se.project_submitted())
    assert status.event_type == "ItemStatusChanged"
