"""One end-to-end run: submit N items, approve them as they become ready, time every status."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from consumers.bench import workload
from pipeline.kafka import make_consumer, make_producer, partitions_of, stop_consumer
from pipeline.processor import routing
from pipeline.settings import Settings
from topics import ContractError, decode
from topics.specs import DECISIONS, STATUS, SUBMISSIONS

TERMINAL = frozenset({"synced", "rejected", "failed_to_export", "send_refused", "retrieved"})


@dataclass
class Run:
    """What one run observed: Kafka record timestamps (ms) per item and final statuses."""

    submitted_ms: dict[str, int] = field(default_factory=dict)
    ready_ms: dict[str, int] = field(default_factory=dict)
    decided_ms: dict[str, int] = field(default_factory=dict)
    accepted: set[str] = field(default_factory=set)
    done_ms: dict[str, int] = field(default_factory=dict)
    final: dict[str, str] = field(default_factory=dict)

    def ready_latencies_ms(self) -> list[float]:
        """submit → ready_to_export, per item that reached it."""
        return [
            float(self.ready_ms[i] - t) for i, t in self.submitted_ms.items() if i in self.ready_ms
        ]

    def synced_latencies_ms(self) -> list[float]:
        """accept → synced, per accepted item that was synced."""
        return [
            float(self.done_ms[i] - self.decided_ms[i])
            for i in self.accepted
            if self.final.get(i) == "synced"
        ]

    def ready_per_s(self) -> float:
        """Items from the first submission's timestamp to the last ready_to_export's."""
        if not self.ready_ms or not self.submitted_ms:
            return 0.0
        span_ms = max(self.ready_ms.values()) - min(self.submitted_ms.values())
        return len(self.ready_ms) / max(span_ms / 1000, 1e-3)

    def span_s(self) -> float:
        """Seconds from the first submission's timestamp to the last terminal status's."""
        if not self.done_ms or not self.submitted_ms:
            return 0.0
        span_ms = max(self.done_ms.values()) - min(self.submitted_ms.values())
        return max(span_ms / 1000, 1e-3)

    def items_per_s(self) -> float:
        """Terminal items (any terminal status) per second of `span_s`."""
        return len(self.done_ms) / self.span_s() if self.span_s() else 0.0

    def synced(self) -> int:
        """Items whose terminal status is `synced` (exported into the ERP)."""
        return sum(1 for status in self.final.values() if status == "synced")

    def synced_per_s(self) -> float:
        """Synced items per second, from the first submission to the last synced status."""
        synced = [self.done_ms[i] for i, status in self.final.items() if status == "synced"]
        if not synced or not self.submitted_ms:
            return 0.0
        return len(synced) / max((max(synced) - min(self.submitted_ms.values())) / 1000, 1e-3)

    def processor_events(self) -> int:
        """Records the processor consumed for these items: each submission and decision, and
        the export result of each accepted item that ended synced or failed to export."""
        exported = sum(
            1 for i in self.accepted if self.final.get(i) in ("synced", "failed_to_export")
        )
        return len(self.submitted_ms) + len(self.decided_ms) + exported

    def processor_events_per_s(self) -> float:
        """`processor_events` per second of `span_s` (comparable to the faust reference)."""
        return self.processor_events() / self.span_s() if self.span_s() else 0.0


def foreign_partitioner(key: bytes, all_partitions: list[int], available: list[int]) -> int:
    """A partitioner that never picks the partition murmur2 names for a key (aiokafka's
    partitioner signature): every record it places is re-routed by the processor, the worst
    case of a producer with another partitioner (librdkafka's default misses 5 in 6)."""
    home = routing.home_partition(key, len(all_partitions))
    return all_partitions[(home + 1) % len(all_partitions)]


def _json(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def _key(event: dict[str, Any]) -> bytes:
    item = event["item"]
    return f"{event['company_id']}:{item['type']}:{item['id']}".encode()


async def status_consumer(settings: Settings) -> AIOKafkaConsumer:
    """A group-less consumer of erp.status positioned at its end (sees only what comes next)."""
    consumer = make_consumer(settings, group_id=None, fetch_max_wait_ms=5)
    await consumer.start()
    partitions = await partitions_of(consumer, settings.topic(STATUS.name))
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    for tp in partitions:
        await consumer.position(tp)
    return consumer


class Driver:
    """Publishes submissions, plays the approver, and records what erp.status says.

    `foreign`: submissions and decisions are published with `foreign_partitioner` instead of
    murmur2, so that the processor re-routes every one of them.
    """

    def __init__(
        self, settings: Settings, company: str, *, approve: bool = True, foreign: bool = False
    ) -> None:
        self.settings = settings
        self.company = company
        self.approve = approve
        options: dict[str, Any] = {"partitioner": foreign_partitioner} if foreign else {}
        self.producer: AIOKafkaProducer = make_producer(settings, linger_ms=1, **options)
        self.consumer: AIOKafkaConsumer | None = None
        self.run = Run()
        self._pending: set[asyncio.Future[Any]] = set()

    async def __aenter__(self) -> Driver:
        await self.producer.start()
        self.consumer = await status_consumer(self.settings)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.producer.stop()
        if self.consumer is not None:
            await stop_consumer(self.consumer)

    async def send(
        self, topic: str, event: dict[str, Any], stamp: dict[str, int], ident: str
    ) -> None:
        """Publish without waiting for the ack; the ack's timestamp is recorded when it comes."""
        future = await self.producer.send(self.settings.topic(topic), _json(event), key=_key(event))
        self._pending.add(future)

        def acked(done: asyncio.Future[Any]) -> None:
            self._pending.discard(done)
            if not done.cancelled() and done.exception() is None:
                stamp[ident] = done.result().timestamp

        future.add_done_callback(acked)

    async def publish_dicts(self, topic: str, events: list[dict[str, Any]]) -> None:
        """Publish setup events and wait for every ack."""
        for event in events:
            await self.producer.send_and_wait(
                self.settings.topic(topic),
                _json(event),
                key=_key(event) if "item" in event else _directory_key(event),
            )

    async def submit(self, events: list[tuple[str, dict[str, Any]]], rate: float | None) -> None:
        """Publish submissions, at `rate` per second when given, else as fast as possible."""
        start = time.monotonic()
        for n, (ident, event) in enumerate(events):
            if rate:
                delay = start + n / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await self.send(SUBMISSIONS.name, event, self.run.submitted_ms, ident)
        await self.producer.flush()

    async def watch(self, wanted: set[str], until: str, timeout_s: float) -> None:
        """Read erp.status, answer ready items, until every wanted item reached `until`."""
        assert self.consumer is not None
        run = self.run
        reached = run.final if until == "terminal" else run.ready_ms
        deadline = time.monotonic() + timeout_s
        while not wanted <= reached.keys() and time.monotonic() < deadline:
            batches = await self.consumer.getmany(timeout_ms=200, max_records=2000)
            for records in batches.values():
                for record in records:
                    await self._on_status(record, wanted)
        await self.producer.flush()

    async def _on_status(self, record: Any, wanted: set[str]) -> None:
        try:
            event = decode(record.value, STATUS)
        except ContractError:
            return
        if event.company_id != self.company or event.item is None:
            return
        ident = event.item.id
        if ident not in wanted:
            return
        status = event.payload.status.value
        if status == "ready_to_export":
            self.run.ready_ms.setdefault(ident, record.timestamp)
            if self.approve and ident not in self.run.decided_ms:
                answer = workload.decision(
                    self.company, event.item.type.value, ident, event.payload.submission_version
                )
                if answer["event_type"] == "ItemAccepted":
                    self.run.accepted.add(ident)
                self.run.decided_ms[ident] = 0
                await self.send(DECISIONS.name, answer, self.run.decided_ms, ident)
        elif status in TERMINAL:
            self.run.final[ident] = status
            self.run.done_ms[ident] = record.timestamp


def _directory_key(event: dict[str, Any]) -> bytes:
    if event["event_type"] == "ApproverUpdated":
        return f"{event['company_id']}:user:{event['payload']['user_id']}".encode()
    return f"{event['company_id']}:settings".encode()
