"""The raw ceiling: an aiokafka consume → decode → produce hop, and a consume-only pass."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from consumers.bench import workload
from pipeline.kafka import (
    create_topics,
    make_consumer,
    make_producer,
    partitions_of,
    stop_consumer,
)
from pipeline.settings import Settings
from topics import decode, encode
from topics.specs import STATUS, SUBMISSIONS


@dataclass(frozen=True)
class Baseline:
    """Events per second of the raw hop and of consuming only, over `events` records."""

    events: int
    hop_events_per_s: float
    consume_events_per_s: float


async def _fill(settings: Settings, count: int, types: tuple[str, ...]) -> None:
    producer = make_producer(settings, linger_ms=5)
    await producer.start()
    try:
        topic = settings.topic(SUBMISSIONS.name)
        for index in range(count):
            event = workload.submission("bench-baseline", index, types)
            key = f"bench-baseline:{event['item']['type']}:{event['item']['id']}".encode()
            await producer.send(topic, json.dumps(event).encode(), key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def _consume(settings: Settings, count: int, hop: bool) -> float:
    """Read `count` records from the start (decoding and forwarding each when `hop`)."""
    consumer = make_consumer(settings, group_id=None, fetch_max_wait_ms=5)
    producer = make_producer(settings, linger_ms=5)
    await consumer.start()
    await producer.start()
    try:
        partitions = await partitions_of(consumer, settings.topic(SUBMISSIONS.name))
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        out = settings.topic(STATUS.name)
        seen = 0
        started = time.perf_counter()
        while seen < count:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            futures: list[Any] = []
            for records in batches.values():
                for record in records:
                    seen += 1
                    if hop:
                        event = decode(record.value, SUBMISSIONS)
                        futures.append(await producer.send(out, encode(event), key=record.key))
            # a hop acknowledges its batch before reading the next, as a committing consumer would
            if futures:
                await asyncio.gather(*futures)
        return count / (time.perf_counter() - started)
    finally:
        await producer.stop()
        await stop_consumer(consumer)


async def measure(settings: Settings, count: int, types: tuple[str, ...]) -> Baseline:
    """Fill a private submissions topic with `count` records, then time both passes on it."""
    private = settings.model_copy(update={"erp_topic_prefix": f"{settings.erp_topic_prefix}base."})
    await create_topics(private, (SUBMISSIONS, STATUS))
    await _fill(private, count, types)
    consume = await _consume(private, count, hop=False)
    hop = await _consume(private, count, hop=True)
    return Baseline(count, hop, consume)
