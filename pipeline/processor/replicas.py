"""Processor runtime plumbing: a whole-topic replica in memory, folded by a function, and a
probe that looks into partitions without joining a group.

Each processor instance keeps the directory and the status/summary view this way rather than
in a faust GlobalTable, because the replica can say when it has caught up with the topic's end
(`sync`): a decision is authorized only after every directory change published before it was
consumed has been applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from pipeline.settings import Settings
from topics import ContractError, TopicSpec, decode

log = logging.getLogger(__name__)


def _groupless_consumer(settings: Settings) -> AIOKafkaConsumer:
    """A consumer that joins no group and commits nothing: it only reads what it is assigned."""
    return AIOKafkaConsumer(
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
        **settings.kafka_client_kwargs(),
    )


class TopicReplica:
    """Reads `spec`'s topic from the beginning, calling `apply(event)` for each decodable one.

    Undecodable records are skipped here: the agent that owns the topic dead-letters them.
    """

    def __init__(self, settings: Settings, spec: TopicSpec, apply: Callable[[Any], object]) -> None:
        self.settings, self.spec, self.apply = settings, spec, apply
        self.name = spec.full_name(settings.erp_topic_prefix)
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []
        self._next: dict[TopicPartition, int] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect, assign every partition, start reading from the beginning."""
        consumer = _groupless_consumer(self.settings)
        await consumer.start()
        self._consumer = consumer
        self._partitions = [TopicPartition(self.name, p) for p in range(self.spec.partitions)]
        consumer.assign(self._partitions)
        await consumer.seek_to_beginning(*self._partitions)
        starts = await consumer.beginning_offsets(self._partitions)
        self._next = {tp: int(offset) for tp, offset in starts.items()}
        self._task = asyncio.create_task(self._run(), name=f"replica:{self.name}")

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            try:
                batches = await self._consumer.getmany(timeout_ms=200)
            except KafkaError as exc:
                log.warning("replica of %s: %s; retrying", self.name, exc)
                await asyncio.sleep(0.5)
                continue
            for tp, records in batches.items():
                for record in records:
                    try:
                        self.apply(decode(record.value, self.spec))
                    except ContractError:
                        pass
                    except Exception:
                        log.exception(
                            "replica of %s could not apply offset %s", self.name, record.offset
                        )
                    self._next[tp] = record.offset + 1

    async def sync(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything published to the topic before this call has been applied."""
        assert self._consumer is not None
        ends = await self._consumer.end_offsets(self._partitions)
        deadline = time.monotonic() + timeout_s
        while any(self._next.get(tp, 0) < end for tp, end in ends.items()):
            if time.monotonic() > deadline:
                log.warning("replica of %s is behind after %.0fs", self.name, timeout_s)
                return False
            await asyncio.sleep(0.01)
        return True

    async def stop(self) -> None:
        """Stop reading and disconnect."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()


class PartitionProbe:
    """Looks into partitions without joining any group: where a partition starts, and the
    offset of its first record at or after a given offset.

    The processor asks it when a record arrives past its partition's checkpoint, to tell
    records it never received from offsets that hold no record (transaction markers,
    compaction). One group-less consumer, started on first use, one question at a time.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def _ready(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = _groupless_consumer(self.settings)
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def log_start(self, topic: str, partition: int) -> int:
        """The partition's first offset still held by the broker."""
        async with self._lock:
            consumer = await self._ready()
            tp = TopicPartition(topic, partition)
            return int((await consumer.beginning_offsets([tp]))[tp])

    async def first_offset(
        self, topic: str, partition: int, offset: int, timeout_s: float = 2.0
    ) -> int | None:
        """Offset of the first record at or after `offset`; None if none arrives in time."""
        async with self._lock:
            consumer = await self._ready()
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            consumer.seek(tp, offset)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                batches = await consumer.getmany(tp, timeout_ms=200, max_records=1)
                for records in batches.values():
                    if records:
                        return int(records[0].offset)
            return None

    async def stop(self) -> None:
        """Disconnect (if it ever connected)."""
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
