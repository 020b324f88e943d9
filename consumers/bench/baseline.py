"""The raw ceiling: aiokafka consume → decode → produce hops, and a consume-only pass."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer

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
    """Events per second over `events` records: the honest hop (a raw client's producer
    defaults), the one-record hop (one record per produced batch, as the workers must on the
    embedded broker) and consuming only."""

    events: int
    hop_events_per_s: float
    hop_one_record_events_per_s: float
    consume_events_per_s: float


def raw_producer(settings: Settings) -> AIOKafkaProducer:
    """The producer a raw client would choose: aiokafka's defaults (default batching and
    linger), only the connection taken from the settings."""
    return AIOKafkaProducer(**settings.kafka_client_kwargs())


async def fill(settings: Settings, topic: str, events: list[tuple[bytes, bytes]]) -> None:
    """Publish (key, value) records through `raw_producer`, acknowledged at the end."""
    producer = raw_producer(settings)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in events]
        await producer.flush()
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def _records(count: int, types: tuple[str, ...]) -> list[tuple[bytes, bytes]]:
    out = []
    for index in range(count):
        event = workload.submission("bench-baseline", index, types)
        key = f"bench-baseline:{event['item']['type']}:{event['item']['id']}".encode()
        out.append((key, json.dumps(event).encode()))
    return out


async def _consume(settings: Settings, count: int, producer: AIOKafkaProducer | None) -> float:
    """Read `count` records from the start; with a `producer`, decode each and forward it."""
    consumer = make_consumer(settings, group_id=None, fetch_max_wait_ms=5)
    await consumer.start()
    if producer is not None:
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
                    if producer is not None:
                        event = decode(record.value, SUBMISSIONS)
                        futures.append(await producer.send(out, encode(event), key=record.key))
            # a hop acknowledges its batch before reading the next, as a committing consumer would
            if futures:
                await asyncio.gather(*futures)
        return count / (time.perf_counter() - started)
    finally:
        if producer is not None:
            await producer.stop()
        await stop_consumer(consumer)


def private_settings(settings: Settings) -> Settings:
    """The settings of the baseline's own topics (the run's prefix + `base.`)."""
    return settings.model_copy(update={"erp_topic_prefix": f"{settings.erp_topic_prefix}base."})


async def measure(settings: Settings, count: int, types: tuple[str, ...]) -> Baseline:
    """Fill a private submissions topic with `count` records, then time the three passes."""
    private = private_settings(settings)
    await create_topics(private, (SUBMISSIONS, STATUS))
    await fill(private, private.topic(SUBMISSIONS.name), _records(count, types))
    consume = await _consume(private, count, None)
    hop = await _consume(private, count, raw_producer(private))
    one_record = await _consume(private, count, make_producer(private, max_batch_size=1))
    return Baseline(count, hop, one_record, consume)
