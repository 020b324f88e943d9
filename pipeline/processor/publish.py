"""Publishing one derived event to its topic: retries and counting."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from pipeline.metrics import Metrics
from pipeline.processor.config import ROUTES
from pipeline.settings import Settings
from topics import Envelope, encode, headers_for, key_of

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
        value = encode(event)
        for attempt in range(PUBLISH_ATTEMPTS):
            try:
                await self._producer().send_and_wait(
                    self.settings.topic(spec.name),
                    key_of(event).encode(),
                    value,
                    None,
                    None,
                    headers_for(event),
                )
                self.metrics.published(spec.name, event)
                return
            except Exception as exc:
                if attempt + 1 == PUBLISH_ATTEMPTS:
                    raise
                log.warning("publishing %s failed (%s); retrying", event.event_type, exc)
                await asyncio.sleep(0.5 * 2**attempt)

    async def durable(self) -> None:
        """Wait until every table write so far is acknowledged on the changelog."""
        await self._producer().flush()


__all__ = ["PUBLISH_ATTEMPTS", "Publisher"]
