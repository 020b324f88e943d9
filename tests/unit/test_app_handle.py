"""The app's record handling with the table and the producer replaced by plain objects."""

from __future__ import annotations

import json
from typing import Any

import pytest

from consumers.dev import samples as se
from pipeline.processor import app as app_module
from pipeline.processor import outbox
from pipeline.processor.app import build_app
from pipeline.settings import Settings
from tests.support.rules import directory
from topics.record import Record

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

        async def durable() -> None:
            self.durable_writes = len(self.processor.items)

        self.durable_writes = 0
        self.processor.publish = publish  # type: ignore[method-assign]
        self.processor.replicas[0].sync = synced  # type: ignore[method-assign]
        self.processor._make_durable = durable  # type: ignore[method-assign]

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
    assert list(harness.processor.items) == [
        b"acme-builders:project:prj-100"
    ]  # the outbox is emptied


async def test_state_and_outputs_are_durable_before_any_output_is_published(
    harness: Harness,
) -> None:
    seen_at_publish: list[set[bytes]] = []

    async def publish(event: Any) -> None:
        seen_at_publish.append(set(harness.processor.items))
        harness.published.append(event)

    harness.processor.publish = publish  # type: ignore[method-assign]
    await harness.send(SUBMISSIONS, se.project_submitted())
    (keys,) = seen_at_publish
    assert (
        b"acme-builders:project:prj-100" in keys
        and outbox.key("acme-builders:project:prj-100") in keys
    )
    assert harness.durable_writes == 2  # state and outbox were flushed before publishing


async def test_outputs_left_by_a_crash_are_published_by_the_items_next_record(
    harness: Harness,
) -> None:
    calls = 0

    async def crashing(event: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("broker gone")
        harness.published.append(event)

    harness.processor.publish = crashing  # type: ignore[method-assign]
    raw = se.project_submitted()
    with pytest.raises(ConnectionError):
        await harness.send(SUBMISSIONS, raw)
    assert harness.published == []
    # the redelivery is a duplicate for the rules, yet what it derived goes out first
    (status,) = await harness.send(SUBMISSIONS, raw)
    assert status.event_type == "ItemStatusChanged" and status.payload.status == "ready_to_export"
    assert outbox.key("acme-builders:project:prj-100") not in harness.processor.items


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
