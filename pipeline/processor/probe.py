"""Looking into partitions without joining a group: where they start and end, where records are."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.kafka import patiently
from pipeline.metrics import Metrics
from pipeline.processor.replicas import (
    CALL_TIMEOUT_S,
    ConsumerFactory,
    groupless_consumer,
    started_consumer,
)
from pipeline.settings import Settings


class PartitionProbe:
    """Looks into partitions without joining any group: where a partition starts and ends, and
    the offset of its first record at or after a given offset.

    The processor asks it when a record arrives past its partition's checkpoint, to tell
    records it never received from offsets that hold no record (transaction markers,
    compaction), and when a partition stalls. One group-less consumer, started on first use,
    one question at a time; each broker call bounded and retried as the replicas' are.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        metrics: Metrics | None = None,
        new_consumer: ConsumerFactory = groupless_consumer,
        call_timeout_s: float = CALL_TIMEOUT_S,
    ) -> None:
        self.settings, self.metrics, self.call_timeout_s = settings, metrics, call_timeout_s
        self._new_consumer = new_consumer
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def _ready(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            self._consumer, _ = await patiently(
                lambda: started_consumer(self.settings, self._new_consumer, []),
                what="probe_start",
                timeout_s=self.call_timeout_s,
                metrics=self.metrics,
            )
        return self._consumer

    async def _offsets(self, topic: str, partition: int, end: bool) -> int:
        async with self._lock:
            consumer = await self._ready()
            tp = TopicPartition(topic, partition)
            ask = consumer.end_offsets if end else consumer.beginning_offsets
            offsets = await patiently(
                lambda: ask([tp]),
                what="probe_offsets",
                timeout_s=self.call_timeout_s,
                metrics=self.metrics,
            )
            return int(offsets[tp])

    async def log_start(self, topic: str, partition: int) -> int:
        """The partition's first offset still held by the broker."""
        return await self._offsets(topic, partition, end=False)

    async def log_end(self, topic: str, partition: int) -> int:
        """The partition's end offset (the offset its next record will get)."""
        return await self._offsets(topic, partition, end=True)

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


__all__ = ["PartitionProbe"]
