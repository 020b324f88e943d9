"""Publishing to and reading from the run's topics: contract events, raw bytes, end offsets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from typing import Any

from pipeline.kafka import (
    caught_up,
    create_topics,
    make_consumer,
    make_producer,
    partitions_of,
    read_all,
    stop_consumer,
)
from pipeline.settings import Settings
from tests.support.events import raw_key
from tests.support.waiting import eventually, eventually_async
from topics import ContractError, TopicSpec, decode, encode, headers_for, key_of

#: A record to publish as it is: (topic, key, value).
Raw = tuple[TopicSpec, bytes | None, bytes]


async def isolated(settings: Settings, name: str) -> Settings:
    """Settings with topics of their own (and so consumer groups of their own)."""
    mine = settings.model_copy(update={"erp_topic_prefix": f"{settings.erp_topic_prefix}{name}."})
    await create_topics(mine)
    return mine


def as_record(spec: TopicSpec, event: dict[str, Any]) -> Raw:
    """A contract event given as a dict, as the record that carries it (unvalidated)."""
    return spec, raw_key(event), json.dumps(event).encode()


def publish(
    settings: Settings,
    spec: TopicSpec,
    *raw: dict[str, Any] | bytes,
    key: bytes | None = None,
    partition: int | None = None,
) -> None:
    """Publish raw events (dicts as JSON, keyed like the contract) or bytes, one ack at a time.

    With `partition`, every record goes to that partition whatever its key.
    """

    async def go() -> None:
        producer = make_producer(settings)
        await producer.start()
        try:
            for item in raw:
                value = item if isinstance(item, bytes) else json.dumps(item).encode()
                record_key = key
                if record_key is None and isinstance(item, dict):
                    record_key = raw_key(item)
                await producer.send_and_wait(
                    settings.topic(spec.name), value, key=record_key, partition=partition
                )
        finally:
            await producer.stop()

    asyncio.run(go())


def publish_all(settings: Settings, records: Iterable[Raw]) -> None:
    """Publish (topic, key, value) records pipelined, waiting for every acknowledgement."""

    async def go() -> None:
        producer = make_producer(settings)
        await producer.start()
        try:
            futures = [
                await producer.send(settings.topic(spec.name), value, key=key)
                for spec, key, value in records
            ]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(go())


def publish_on_partition(
    settings: Settings, spec: TopicSpec, records: Iterable[tuple[bytes, bytes]], partition: int = 0
) -> None:
    """Publish (key, value) records in order to one partition, whatever their keys hash to:
    the processor then handles them one after the other."""

    async def go() -> None:
        producer = make_producer(settings)
        await producer.start()
        try:
            for key, value in records:
                await producer.send_and_wait(
                    settings.topic(spec.name), value, key=key, partition=partition
                )
        finally:
            await producer.stop()

    asyncio.run(go())


def records_where(settings: Settings, spec: TopicSpec, match: Callable[[Any], bool]) -> list[Any]:
    """The records on a topic now whose value, read as JSON whatever its size, `match`es
    (to find records that `topics.decode` may refuse, such as a dead letter too big)."""
    found = []
    for record in asyncio.run(read_all(settings, spec)):
        with suppress(ValueError, LookupError, TypeError):  # not JSON, or not that shape
            if match(json.loads(record.value)):
                found.append(record)
    return found


async def publish_events(settings: Settings, spec: TopicSpec, events: list[dict[str, Any]]) -> None:
    """Validate contract events (dicts) and publish them pipelined with their keys and headers."""
    producer = make_producer(settings)
    await producer.start()
    try:
        futures = []
        for raw in events:
            event = decode(json.dumps(raw), spec)
            futures.append(
                await producer.send(
                    spec.full_name(settings.erp_topic_prefix),
                    encode(event),
                    key=key_of(event).encode(),
                    headers=headers_for(event),
                )
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def publish_raw(
    settings: Settings, spec: TopicSpec, value: bytes, key: bytes | None = None
) -> None:
    """Publish bytes as they are (hostile input) from async code."""
    producer = make_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(spec.full_name(settings.erp_topic_prefix), value, key=key)
    finally:
        await producer.stop()


class Sender:
    """Sends records as they are, one at a time, each acknowledged before `send` returns,
    with aiokafka or with librdkafka (confluent-kafka): explicit partitions, any key, headers
    with repeated names or null values, header names given as bytes that are not UTF-8 (sent
    by `send_with_byte_header_names`, whichever client is asked), any broker timestamp
    (librdkafka reads 0 as "now").
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._aiokafka = make_producer(settings, linger_ms=0)
        # imported here: only the tests that send with librdkafka need it installed
        import confluent_kafka

        self._librdkafka = confluent_kafka.Producer(
            {
                "bootstrap.servers": settings.require_bootstrap(),
                "acks": "all",
                "linger.ms": 0,
                "batch.num.messages": 1,  # one record per batch, as the embedded broker needs
                "message.max.bytes": 8 * 1024 * 1024,
            }
        )

    async def __aenter__(self) -> Sender:
        await self._aiokafka.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._aiokafka.stop()
        self._librdkafka.flush(10)

    async def send(
        self,
        spec: TopicSpec,
        value: bytes | None,
        *,
        key: bytes | None = None,
        partition: int | None = None,
        headers: Sequence[tuple[str | bytes, bytes | None]] = (),
        timestamp_ms: int | None = None,
        client: str = "aiokafka",
    ) -> tuple[int, int]:
        """Publish one record; its (partition, offset) once the broker has it."""
        topic = self.settings.topic(spec.name)
        if any(isinstance(name, bytes) for name, _ in headers):
            assert partition is not None, "a record with byte header names goes to a partition"
            return await send_with_byte_header_names(
                self._aiokafka, topic, partition, key, value, headers, timestamp_ms
            )
        if client == "aiokafka":
            sent = await self._aiokafka.send_and_wait(
                topic,
                value,
                key=key,
                partition=partition,
                headers=list(headers),
                timestamp_ms=timestamp_ms,
            )
            return sent.partition, sent.offset
        return await asyncio.to_thread(
            self._produce, topic, value, key, partition, headers, timestamp_ms
        )

    def _produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        partition: int | None,
        headers: Sequence[tuple[str | bytes, bytes | None]],
        timestamp_ms: int | None,
    ) -> tuple[int, int]:
        delivered: list[Any] = []
        options: dict[str, Any] = {"headers": list(headers)}
        if partition is not None:
            options["partition"] = partition
        if timestamp_ms is not None:
            options["timestamp"] = timestamp_ms
        self._librdkafka.produce(
            topic, value, key, on_delivery=lambda e, m: delivered.append((e, m)), **options
        )
        self._librdkafka.flush(30)
        [(error, message)] = delivered
        if error is not None:
            raise RuntimeError(f"librdkafka could not publish to {topic}: {error}")
        return int(message.partition()), int(message.offset())


class _NameBytes(str):
    """A header name whose UTF-8 form is the given bytes, which need not be UTF-8: aiokafka's
    pure-Python record builder writes a name as `name.encode("utf-8")` returns it."""

    raw: bytes

    def __new__(cls, raw: bytes) -> _NameBytes:
        name = super().__new__(cls, raw.decode("utf-8", "replace"))
        name.raw = raw
        return name

    def encode(self, *args: Any, **kwargs: Any) -> bytes:  # type: ignore[override]
        return self.raw


async def send_with_byte_header_names(
    producer: Any,
    topic: str,
    partition: int,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str | bytes, bytes | None]],
    timestamp_ms: int | None = None,
) -> tuple[int, int]:
    """Send one record whose header names may be bytes that are not UTF-8, as clients that
    take names as bytes (kcat's `-H`, librdkafka's C API) can; its (partition, offset).

    Every client API of Python takes names as text (confluent-kafka turns bytes into their
    repr), so this builds the batch with aiokafka's own batch API and its pure-Python
    record builder, which writes each name's bytes as given.
    """
    from aiokafka.record.default_records import _DefaultRecordBatchBuilderPy

    batch = producer.create_batch()
    batch._builder = _DefaultRecordBatchBuilderPy(2, 0, 0, -1, -1, -1, 16 * 1024 * 1024)
    names = [(_NameBytes(n) if isinstance(n, bytes) else n, v) for n, v in headers]
    batch.append(timestamp=timestamp_ms, key=key, value=value, headers=names)
    sent = await (await producer.send_batch(batch, topic, partition=partition))
    return sent.partition, sent.offset


def publish_with_header_name(
    settings: Settings, spec: TopicSpec, name: bytes, key: bytes, value: bytes, partition: int = 0
) -> None:
    """Publish one record whose header name is `name`, bytes that need not be UTF-8 (see
    `send_with_byte_header_names`)."""

    async def go() -> None:
        producer = make_producer(settings, linger_ms=0)
        await producer.start()
        try:
            await send_with_byte_header_names(
                producer, settings.topic(spec.name), partition, key, value, [(name, b"value")]
            )
        finally:
            await producer.stop()

    asyncio.run(go())


async def read_from(settings: Settings, spec: TopicSpec, starts: dict[int, int]) -> list[Any]:
    """The records of a topic from `starts` (partition → offset) to its end now."""
    from aiokafka import TopicPartition

    name = spec.full_name(settings.erp_topic_prefix)
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        partitions = [TopicPartition(name, p) for p in sorted(starts)]
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, starts[tp.partition])
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        while not await caught_up(consumer, ends):
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
        while batches := await consumer.getmany(timeout_ms=300):  # past a reported end
            for batch in batches.values():  # (see `pipeline.kafka.read_all`)
                records.extend(batch)
        return records
    finally:
        await stop_consumer(consumer)


async def end_offsets(settings: Settings, spec: TopicSpec) -> dict[int, int]:
    """Partition → end offset of a topic now."""
    name = spec.full_name(settings.erp_topic_prefix)
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        partitions = await partitions_of(consumer, name)
        ends = await consumer.end_offsets(partitions)
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await stop_consumer(consumer)


def decoded(settings: Settings, spec: TopicSpec) -> list[Any]:
    """Every decodable event on a topic now, in partition order (undecodable records skipped)."""
    found = []
    for record in asyncio.run(read_all(settings, spec)):
        with suppress(ContractError):
            found.append(decode(record.value or b"", spec))
    return found


def events_of(records: list[Any], spec: TopicSpec) -> list[Any]:
    """Decode records of a topic (every one must decode)."""
    return [decode(record.value, spec) for record in records]


def about(item_id: str, event_type: str | None = None) -> Callable[[Any], bool]:
    """A matcher of events about one item (and of one type); it does not wait."""
    return lambda e: (
        e.item is not None
        and e.item.id == item_id
        and (event_type is None or e.event_type == event_type)
    )


def wait_for_events(
    settings: Settings,
    spec: TopicSpec,
    match: Callable[[Any], bool],
    *,
    count: int = 1,
    timeout: float = 60.0,
) -> list[Any]:
    """The events on a topic that `match`, once there are at least `count` of them."""
    found: list[Any] = []

    def enough() -> list[Any] | None:
        found[:] = [e for e in decoded(settings, spec) if match(e)]
        return list(found) if len(found) >= count else None

    return eventually(
        enough,
        timeout=timeout,
        interval=0.2,
        message=lambda: f"{len(found)}/{count} matching events on {spec.name}",
    )


async def records_until(
    settings: Settings,
    spec: TopicSpec,
    done: Callable[[list[Any]], bool],
    *,
    timeout: float = 30.0,
) -> list[Any]:
    """Every record of a topic, once `done(records)` holds (from async tests)."""
    seen: list[Any] = []

    def ready() -> tuple[list[Any]] | None:
        seen[:] = asyncio.run(read_all(settings, spec))
        # a tuple, so that an empty list of records can be the answer
        return (list(seen),) if done(seen) else None

    (records,) = await eventually_async(
        ready,
        timeout=timeout,
        interval=0.2,
        message=lambda: f"{spec.name}: condition not met ({len(seen)} records)",
    )
    return records
