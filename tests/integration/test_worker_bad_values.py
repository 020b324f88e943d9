"""A value a worker's side effect cannot take is dead-lettered; the worker and its partition go on.

The case that stopped the read model for every company: a commitment title with a NUL
character passed the contract, and PostgreSQL refused it in the projection's transaction (as it
refused a submission version past its `integer`). The contract now refuses both, so the
projection dead-letters them at `schema` before they reach its transaction.
And values or keys near 1 MiB, refused by the consume loop: their dead letters fit in a record
Kafka takes by default and decode, instead of being bigger than the record they copy.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from consumers.dev import samples as se
from consumers.readmodel.projection import serve
from consumers.worker.runtime import Runtime
from pipeline.kafka import make_producer
from pipeline.rules.derive import status_changed
from pipeline.settings import Settings
from tests.support.db import rows
from tests.support.kafka import (
    isolated,
    publish_with_header_name,
    records_where,
    wait_for_events,
)
from tests.support.rules import event
from tests.support.waiting import eventually_async
from topics import decode, encode, key_of
from topics.limits import MAX_EVENT_BYTES, MAX_RECORD_BYTES
from topics.payloads import ItemStatus
from topics.specs import DEAD_LETTERS, STATUS

pytestmark = pytest.mark.timeout(180)


def _ready(item_id: str, **payload: Any) -> tuple[bytes, bytes]:
    """(key, value) of a `ready_to_export` status, its payload changed as given (unvalidated)."""
    submitted = event(se.commitment_submitted(item_id))
    status = status_changed(
        submitted, ItemStatus.READY_TO_EXPORT, None, 1, submission=submitted, sequence=1
    )
    value = json.loads(encode(status))
    value["payload"].update(payload)
    return key_of(status).encode(), json.dumps(value).encode()


async def _send(mine: Settings, records: list[tuple[bytes, bytes]]) -> None:
    """Publish (key, value) records in order to partition 0 of `mine`'s erp.status."""
    producer = make_producer(mine)
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(mine.topic(STATUS.name), value, key=key, partition=0)
    finally:
        await producer.stop()


async def _project_until_landed(mine: Settings, item_id: str, message: str) -> None:
    """Run the projection on `mine` until `item_id` is in the read model; it must not stop."""
    stop = asyncio.Event()
    projection = asyncio.create_task(serve(Runtime.local(mine, stop)))

    def landed() -> bool:
        assert not projection.done(), f"the projection stopped: {projection.exception()!r}"
        return bool(rows(mine, "SELECT 1 FROM items WHERE item_id = %s", item_id))

    try:
        await eventually_async(landed, timeout=60, message=message)
    finally:
        stop.set()
        await asyncio.wait_for(projection, 30)


async def test_values_postgresql_cannot_take_are_dead_lettered_and_the_next_item_lands(
    settings: Settings,
) -> None:
    mine = await isolated(settings, f"nul{uuid.uuid4().hex[:6]}")
    nul, big = f"sc-nul-{uuid.uuid4().hex[:6]}", f"sc-big-{uuid.uuid4().hex[:6]}"
    normal = f"sc-ok-{uuid.uuid4().hex[:6]}"
    records = {
        nul: _ready(nul, item_title="Steel\u0000frame"),
        big: _ready(big, submission_version=2**31),  # past PostgreSQL's `integer`
        normal: _ready(normal, item_title="Steel frame"),
    }
    await _send(mine, list(records.values()))
    await _project_until_landed(
        mine, normal, f"{normal}, behind the refused records on its partition, never reached items"
    )

    for item_id, field in ((nul, "payload.item_title"), (big, "payload.submission_version")):
        key = records[item_id][0].decode()
        (dead,) = await asyncio.to_thread(
            wait_for_events, mine, DEAD_LETTERS, lambda e, key=key: e.payload.source.key == key
        )
        assert dead.payload.stage.value == "schema"
        assert dead.payload.source.topic == mine.topic(STATUS.name)
        assert field in dead.payload.error
        assert rows(mine, "SELECT 1 FROM items WHERE item_id = %s", item_id) == []


async def test_dead_letters_of_a_value_and_a_key_near_1_mib_fit_and_the_partition_goes_on(
    settings: Settings,
) -> None:
    mine = await isolated(settings, f"big{uuid.uuid4().hex[:6]}")
    key = f"acme-builders:commitment:sc-big-{uuid.uuid4().hex[:6]}"
    near = b'{"pad": "' + "€".encode() * ((MAX_EVENT_BYTES - 20) // 3) + b'"}'
    huge_key = f"{key}:{'ü' * (MAX_EVENT_BYTES // 2)}"
    normal = f"sc-ok-{uuid.uuid4().hex[:6]}"
    after_key, after_value = _ready(normal, item_title="Steel frame")
    await _send(mine, [(key.encode(), near), (huge_key.encode(), b"{"), (after_key, after_value)])
    await _project_until_landed(
        mine, normal, f"{normal}, behind the two big records on its partition, never reached items"
    )

    records = await asyncio.to_thread(
        records_where,
        mine,
        DEAD_LETTERS,
        lambda v: str(v["payload"]["source"]["key"]).startswith(key),
    )
    assert len(records) == 2
    by_stage = {}
    for record in records:
        assert len(record.value) <= MAX_EVENT_BYTES
        headers = sum(len(name.encode()) + len(value) for name, value in record.headers)
        assert len(record.key) + len(record.value) + headers <= MAX_RECORD_BYTES
        dead = decode(record.value, DEAD_LETTERS)
        by_stage[dead.payload.stage.value] = dead.payload
    assert by_stage["schema"].raw_truncated and by_stage["schema"].raw_bytes == len(near)
    assert by_stage["decode"].source.key_truncated
    assert by_stage["decode"].source.key_bytes == len(huge_key.encode())


async def test_a_header_name_that_is_not_utf8_is_dead_lettered_and_the_partition_goes_on(
    settings: Settings,
) -> None:
    mine = await isolated(settings, f"hdr{uuid.uuid4().hex[:6]}")
    (key, value), (after_key, after_value) = _ready("sc-hdr"), _ready("sc-after")
    await asyncio.to_thread(publish_with_header_name, mine, STATUS, b"\xff\xfe", key, value)
    await _send(mine, [(after_key, after_value)])
    await _project_until_landed(mine, "sc-after", "the record after it never landed")
    (dead,) = await asyncio.to_thread(
        wait_for_events, mine, DEAD_LETTERS, lambda e: e.payload.source.offset == 0
    )
    assert dead.payload.stage.value == "decode"
