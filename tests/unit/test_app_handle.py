"""The app's record handling with the table and the producer replaced by plain objects."""

from __future__ import annotations

import json
from typing import Any

import pytest

from consumers.dev import samples as se
from pipeline.processor import checkpoints
from pipeline.processor import step as step_module
from pipeline.rules import outbox
from tests.support.processor import Harness
from topics.record import Record

SUBMISSIONS = "erp.submissions"
DECISIONS = "erp.decisions"


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
    assert list(harness.items) == [
        b"acme-builders:project:prj-100",
        checkpoints.key(SUBMISSIONS, 0),
    ]  # the outbox is emptied; besides the state, only the partition's checkpoint is kept


async def test_state_and_outputs_are_durable_before_any_output_is_published(
    harness: Harness,
) -> None:
    await harness.send(SUBMISSIONS, se.project_submitted())
    (keys,) = harness.keys_at_publish
    assert (
        b"acme-builders:project:prj-100" in keys
        and outbox.key("acme-builders:project:prj-100") in keys
    )
    assert harness.durable_writes == 2  # state and outbox were flushed before publishing


async def test_outputs_left_by_a_crash_are_published_by_the_items_next_record() -> None:
    harness = Harness(publish_failures=1)
    raw = se.project_submitted()
    with pytest.raises(ConnectionError):
        await harness.send(SUBMISSIONS, raw)
    assert harness.published == []
    # the redelivery is a duplicate for the rules, yet what it derived goes out first
    (status,) = await harness.send(SUBMISSIONS, raw)
    assert status.event_type == "ItemStatusChanged" and status.payload.status == "ready_to_export"
    assert outbox.key("acme-builders:project:prj-100") not in harness.items


async def test_unexpected_error_in_rules_is_dead_lettered(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> Any:
        raise KeyError("boom")

    monkeypatch.setattr(step_module, "react", broken)
    (dead,) = await harness.send(SUBMISSIONS, se.project_submitted())
    assert dead.payload.stage == "business_rule" and "boom" in dead.payload.error
    monkeypatch.undo()
    (status,) = await harness.send(SUBMISSIONS, se.project_submitted())
    assert status.event_type == "ItemStatusChanged"


async def test_directory_records_are_counted_like_every_consumed_record(harness: Harness) -> None:
    approver = json.dumps(se.approver_updated(se.APPROVER)).encode()
    key = f"{se.COMPANY}:user:{se.APPROVER['user_id']}".encode()
    processor = harness.processor
    await processor.directory_record(Record("erp.directory", 0, 1, key, approver))
    await processor.directory_record(Record("erp.directory", 0, 2, key, b"\xffnot json"))
    consumed = {
        sample.labels["outcome"]: sample.value
        for family in processor.step.metrics.registry.collect()
        for sample in family.samples
        if sample.name == "erp_pipeline_events_consumed_total"
        and sample.labels["topic"] == "erp.directory"
    }
    assert consumed == {"processed": 1, "refused": 1}
    # the replica alone applies erp.directory (one reader: versions in log order)
    assert processor.directory.current(se.COMPANY, se.APPROVER["user_id"]) is not None
    (dead,) = harness.published
    assert (dead.payload.stage, dead.payload.source.offset) == ("decode", 2)
