"""Watching the processor: /metrics, /healthz and /readyz, and its consumer lag."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pipeline.metrics import Metrics
from pipeline.observability import HealthServer
from pipeline.processor.config import APP_NAME
from pipeline.settings import Settings

log = logging.getLogger(__name__)


class Observer:
    """The HTTP side and the lag of the faust app `app`.

    Its loop also beats for `heal_stalls` (the stall watchdog), which shares its interval.
    """

    def __init__(
        self,
        app: Any,
        settings: Settings,
        metrics: Metrics,
        ready: asyncio.Event,
        heal_stalls: Callable[[], Awaitable[None]],
    ) -> None:
        self.app, self.settings, self.metrics = app, settings, metrics
        self.ready, self.heal_stalls = ready, heal_stalls

    async def run(self) -> None:
        """Serve /metrics, /healthz, /readyz and sample the group's lag until shutdown."""
        server = HealthServer(self.metrics, self.settings.metrics_port, self.readiness)
        await server.start()
        try:
            while True:
                self.sample_lag()
                try:
                    await self.heal_stalls()
                except Exception:
                    log.exception("checking input partitions for stalls failed")
                await asyncio.sleep(self.settings.metrics_sample_interval_s)
        finally:
            await server.stop()

    def sample_lag(self) -> None:
        """Lag of the assigned partitions from faust's own consumer: highwater - committed.

        Read from the running consumer rather than asked of the broker with the group's id:
        a second client naming the group can disturb the group on some brokers. The committed
        offsets are faust's private `_committed_offset`; should a faust release lay its
        consumer out differently, the sample fails quietly rather than the worker.
        """
        consumer: Any = self.app.consumer
        try:
            committed = consumer._committed_offset
            for tp in consumer.assignment():
                highwater = consumer.highwater(tp)
                if highwater is None:
                    continue
                done = committed.get(tp) or 0
                self.metrics.consumer_lag.labels(APP_NAME, tp.topic, str(tp.partition)).set(
                    max(0, highwater - done)
                )
        except (AttributeError, KeyError) as exc:  # another faust layout: no lag, no crash
            log.debug("lag sample failed: %r", exc)

    async def readiness(self) -> str | None:
        """None when ready, else why not (shown by /readyz)."""
        if not self.ready.is_set():
            return "directory, status and notification replicas not caught up yet"
        if self.app.rebalancing:
            return "rebalancing: partitions being assigned, tables recovering"
        if not self.app.consumer.assignment():
            return "no partitions assigned yet"
        return None


__all__ = ["Observer"]
