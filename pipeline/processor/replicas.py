"""A whole topic kept in memory by each processor instance, folded by a function.

Each processor instance keeps the directory and the status/summary view this way rather than
in a faust GlobalTable, because the replica can say when it has caught up with the topic's end
(`sync`): a decision is authorized only after every directory change published before it was
consumed has been applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from pipeline.kafka import patiently
from pipeline.metrics import Metrics
from pipeline.rules.keys import key_error
from pipeline.settings import Settings
from topics import ContractError, TopicSpec
from topics.record import Record, decode_record

log = logging.getLogger(__name__)


#: How long one broker call of a replica or the probe may take before it is retried.
CALL_TIMEOUT_S = 15.0

ConsumerFactory = Callable[[Settings], AIOKafkaConsumer]


def groupless_consumer(settings: Settings) -> AIOKafkaConsumer:
    """A consumer that joins no group and commits nothing: it only reads what it is assigned."""
    return AIOKafkaConsumer(
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
        **settings.kafka_client_kwargs(),
    )


async def started_consumer(
    settings: Settings, new_consumer: ConsumerFactory, partitions: list[TopicPartition]
) -> tuple[AIOKafkaConsumer, dict[TopicPartition, int]]:
    """A started consumer assigned `partitions` from their beginning, and where they begin.

    Cancelled (a timeout), it stops the consumer it made, giving that a bounded wait too.
    """
    consumer = new_consumer(settings)
    try:
        await consumer.start()
        if not partitions:
            return consumer, {}
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        starts = await consumer.beginning_offsets(partitions)
        return consumer, {tp: int(offset) for tp, offset in starts.items()}
    except BaseException:
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(consumer.stop(), 5.0)
        raise


class TopicReplica:
    """Reads `spec`'s topic from the beginning, calling `apply(event)` for each decodable one.

    Undecodable records (one with no value too), and those whose key is not their event's
    (`rules.keys`), are skipped here: the agent that owns the topic dead-letters them. Every
    broker call the replica waits on is bounded (`call_timeout_s`) and retried with a warning
    and `erp_pipeline_broker_call_retries_total`, so that a broker that never answers shows
    instead of leaving the processor waiting forever for its replicas.
    """

    def __init__(
        self,
        settings: Settings,
        spec: TopicSpec,
        apply: Callable[[Any], object],
        *,
        metrics: Metrics | None = None,
        new_consumer: ConsumerFactory = groupless_consumer,
        call_timeout_s: float = CALL_TIMEOUT_S,
    ) -> None:
        self.settings, self.spec, self.apply = settings, spec, apply
        self.metrics, self.call_timeout_s = metrics, call_timeout_s
        self._new_consumer = new_consumer
        self.name = spec.full_name(settings.erp_topic_prefix)
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []
        self._next: dict[TopicPartition, int] = {}
        self._task: asyncio.Task[None] | None = None
        #: Set each time a batch has been applied (`sync` waits on it).
        self._applied = asyncio.Event()

    async def start(self) -> None:
        """Connect, assign every partition, start reading from the beginning.

        Retried until the broker answers (each try bounded, each retry a warning).
        """
        self._partitions = [TopicPartition(self.name, p) for p in range(self.spec.partitions)]
        self._consumer, self._next = await patiently(
            lambda: started_consumer(self.settings, self._new_consumer, self._partitions),
            what="replica_start",
            timeout_s=self.call_timeout_s,
            metrics=self.metrics,
        )
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
                        read = Record.of(record)
                        event = decode_record(read, self.spec)
                        if key_error(self.spec, read, event) is None:
                            self.apply(event)
                    except ContractError:
                        pass
                    except Exception:
                        log.exception(
                            "replica of %s could not apply offset %s", self.name, record.offset
                        )
                    self._next[tp] = record.offset + 1
            if batches:
                self._applied.set()

    async def sync(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything published to the topic before this call has been applied.

        Returns False (with a warning) when that takes longer than `timeout_s` seconds,
        however long the broker takes to answer.
        """
        consumer = self._consumer
        assert consumer is not None
        try:
            async with asyncio.timeout(timeout_s):
                ends = await patiently(
                    lambda: consumer.end_offsets(self._partitions),
                    what="replica_end_offsets",
                    timeout_s=min(self.call_timeout_s, timeout_s / 2),
                    metrics=self.metrics,
                )
                while any(self._next.get(tp, 0) < end for tp, end in ends.items()):
                    self._applied.clear()
                    await self._applied.wait()
        except TimeoutError:
            log.warning("replica of %s is behind after %.0fs", self.name, timeout_s)
            return False
        return True

    async def stop(self) -> None:
        """Stop reading and disconnect."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()


__all__ = [
    "CALL_TIMEOUT_S",
    "ConsumerFactory",
    "TopicReplica",
    "groupless_consumer",
    "started_consumer",
]
