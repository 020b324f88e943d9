"""Publishing one derived event to its topic: retries and counting."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
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


__all__ = ["PUBLISH_ATTEMPTS", "Publisher"]
