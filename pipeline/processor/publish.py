"""Publishing derived events and re-routed copies with faust's producer: batched sends, retries,
counting, and keeping every partition's end exact on brokers that need it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.metrics import Metrics
from pipeline.processor import routing
from pipeline.processor.config import ROUTES
from pipeline.settings import Settings
from topics import Envelope, encode, headers_for, key_of
from topics.record import Record
from topics.specs import ITEM_ROUTES

log = logging.getLogger(__name__)

PUBLISH_ATTEMPTS = 6


@dataclass(frozen=True)
class Outgoing:
    """One record to send: `what` names it in logs; `partition` None lets the producer's
    partitioner pick it from the key; `home` is the partition it lands on either way."""

    what: str
    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None
    home: int
    headers: list[tuple[str, bytes]]
    event: Envelope | None = None


class Publisher:
    """Sends derived events with faust's producer, the same one that writes the changelog.

    `producer` returns that producer when called: faust creates it on first use, which must
    not happen before the app runs.
    """

    def __init__(self, settings: Settings, metrics: Metrics, producer: Callable[[], Any]) -> None:
        self.settings = settings
        self.metrics = metrics
        self._producer = producer

    async def publish(self, event: Envelope) -> None:
        """Send one derived event to its topic and wait for the broker's ack."""
        spec = ROUTES[event.event_type]
        topic, key = self.settings.topic(spec.name), key_of(event).encode()
        await self._send(
            event.event_type, topic, key, encode(event), None, None, headers_for(event)
        )
        self.metrics.published(spec.name, event)

    async def reroute(self, record: Record, partition: int) -> None:
        """Re-publish `record` (key and value unchanged) on `partition` of the repartition
        topic, its coordinates and timestamp in origin headers; wait for the broker's ack."""
        await self._send(
            f"{record.topic}[{record.partition}]@{record.offset}",
            self.settings.topic(ITEM_ROUTES.name),
            record.key,
            record.value,
            partition,
            None,
            routing.origin_headers(record),
        )

    async def send_all(
        self, events: Sequence[Envelope], copies: Sequence[tuple[Record, int]]
    ) -> None:
        """Send every event and re-routed copy `(record, partition)` without waiting for each,
        then wait until the broker acknowledged them all (see `ports.Send`).

        Records to one partition keep the order given. When a send fails, everything from
        the first failed record on is sent again, one at a time, each acknowledged before the
        next (a record acknowledged already may so appear twice: same event_id). Raises the
        broker's error when a record still fails after PUBLISH_ATTEMPTS tries.

        With `KAFKA_SINGLE_RECORD_BATCHES` (a broker that reports a partition's end as its
        last batch's first offset + 1) the last record for each partition is held back and
        sent alone after the others are acknowledged, so each partition's last batch holds
        one record and its end offset is exact for whoever reads "up to the end".
        """
        outgoing = [self._event(e) for e in events]
        outgoing += [self._copy(record, partition) for record, partition in copies]
        if not self.settings.kafka_single_record_batches:
            await self._send_many(outgoing)
        else:
            last = {(o.topic, o.home): n for n, o in enumerate(outgoing)}
            finals = set(last.values())
            await self._send_many([o for n, o in enumerate(outgoing) if n not in finals])
            await self._send_many([outgoing[n] for n in sorted(finals)])
        for one in outgoing:
            if one.event is not None:
                self.metrics.published(ROUTES[one.event.event_type].name, one.event)

    def _event(self, event: Envelope) -> Outgoing:
        spec = ROUTES[event.event_type]
        key = key_of(event).encode()
        home = routing.home_partition(key, spec.partitions)
        topic = self.settings.topic(spec.name)
        return Outgoing(
            event.event_type, topic, key, encode(event), None, home, headers_for(event), event
        )

    def _copy(self, record: Record, partition: int) -> Outgoing:
        return Outgoing(
            f"{record.topic}[{record.partition}]@{record.offset}",
            self.settings.topic(ITEM_ROUTES.name),
            record.key,
            record.value,
            partition,
            partition,
            routing.origin_headers(record),
        )

    async def _send_many(self, outgoing: Sequence[Outgoing]) -> None:
        if not outgoing:
            return
        producer = self._producer()
        futures: list[Any] = []
        failed: int | None = None
        for n, one in enumerate(outgoing):
            try:
                futures.append(
                    await producer.send(
                        one.topic, one.key, one.value, one.partition, None, one.headers
                    )
                )
            except Exception as exc:
                log.warning("sending %s failed (%s); sending the rest one by one", one.what, exc)
                failed = n
                break
        results = await asyncio.gather(*futures, return_exceptions=True)
        for n, result in enumerate(results):
            if isinstance(result, BaseException):
                log.warning(
                    "sending %s failed (%s); sending the rest one by one", outgoing[n].what, result
                )
                failed = n if failed is None else min(failed, n)
                break
        if failed is None:
            return
        for one in outgoing[failed:]:
            await self._send(
                one.what, one.topic, one.key, one.value, one.partition, None, one.headers
            )

    async def _send(
        self,
        what: str,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp_s: float | None,
        headers: list[tuple[str, bytes]],
    ) -> None:
        for attempt in range(PUBLISH_ATTEMPTS):
            try:
                await self._producer().send_and_wait(
                    topic, key, value, partition, timestamp_s, headers
                )
                return
            except Exception as exc:
                if attempt + 1 == PUBLISH_ATTEMPTS:
                    raise
                log.warning("publishing %s failed (%s); retrying", what, exc)
                await asyncio.sleep(0.5 * 2**attempt)

    async def durable(self) -> None:
        """Wait until every table write so far is acknowledged on the changelog."""
        await self._producer().flush()


__all__ = ["PUBLISH_ATTEMPTS", "Outgoing", "Publisher"]
