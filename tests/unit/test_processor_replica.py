"""The processor's whole-topic replica skips what it cannot decode, a record with no value too."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from aiokafka import TopicPartition

from consumers.dev import samples as se
from pipeline.processor.replicas import TopicReplica
from pipeline.settings import Settings
from tests.support.consume_loop import FakeConsumer, FakeRecord
from tests.support.events import raw_key
from tests.support.waiting import eventually_here
from topics.specs import DIRECTORY


async def test_a_record_with_no_value_is_skipped_quietly_and_the_next_applied(
    caplog: pytest.LogCaptureFixture,
) -> None:
    applied: list[Any] = []
    replica = TopicReplica(
        Settings(kafka_bootstrap_servers="127.0.0.1:1"), DIRECTORY, applied.append
    )
    event = se.approver_updated(se.APPROVER)
    approver, key = json.dumps(event).encode(), raw_key(event)
    name = replica.name
    replica._consumer = FakeConsumer(  # type: ignore[assignment]
        [
            FakeRecord(None, topic=name, offset=0),
            FakeRecord(approver, topic=name, offset=1, key=key),
        ]
    )
    reading = asyncio.create_task(replica._run())
    try:
        await eventually_here(
            lambda: replica._next.get(TopicPartition(name, 0)) == 2,
            timeout=5,
            message="the replica read both records",
        )
    finally:
        reading.cancel()
    assert [event.event_type for event in applied] == ["ApproverUpdated"]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
