"""Watching the processor: /metrics, /healthz and /readyz, and its consumer lag."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pipeline.metrics import Metrics
from pipeline.observability import HealthServer
from pipeline.processor.config import APP_NAME
from pipeline.processor.transport import committed_offsets
from pipeline.settings import Settings

log = logging.getLogger(__name__)


#: A processor not ready for this long says why in a warning, and again as long as it stays so.
NOT_READY_WARN_S = 60.0


class Observer:
    """The HTTP side and the lag of the faust app `app`.

    Its loop also beats for `heal_stalls` (the stall watchdog), which shares its interval, and
    warns when the processor stays not ready (`watch_readiness`). `clock`: monotonic seconds.
    """

    def __init__(
        self,
        app: Any,
        settings: Settings,
        metrics: Metrics,
        ready: asyncio.Event,
        heal_stalls: Callable[[], Awaitable[None]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app, self.settings, self.metrics = app, settings, metrics
        self.ready, self.heal_stalls, self.clock = ready, heal_stalls, clock
        #: The metrics port bound before faust starts (`worker.run`), so that a port in use
        #: stops the worker with a clear error rather than crashing a faust task.
        self.sock: socket.socket | None = None
        self._not_ready_since: float | None = None
        self._warned_at: float | None = None

    async def run(self) -> None:
        """Serve /metrics, /healthz, /readyz and sample the group's lag until shutdown."""
        server = HealthServer(
            self.metrics, self.settings.metrics_port, self.readiness, sock=self.sock
        )
        await server.start()
        try:
            while True:
                self.sample_lag()
                try:
                    await self.watch_readiness()
                    await self.heal_stalls()
                except Exception:
                    log.exception("checking readiness and input partitions for stalls failed")
                await asyncio.sleep(self.settings.metrics_sample_interval_s)
        finally:
            await server.stop()

    def sample_lag(self) -> None:
        """Lag of the assigned partitions from faust's own consumer: highwater - committed.

        Read from the running consumer (`transport.committed_offsets`) rather than asked of
        the broker with the group's id; should a faust release lay its consumer out
        differently, the sample fails quietly rather than the worker.
        """
        consumer: Any = self.app.consumer
        committed = committed_offsets(consumer)
        if committed is None:
            log.debug("lag sample failed: faust's committed offsets cannot be read")
            return
        try:
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

    async def watch_readiness(self) -> None:
        """Warn, naming the reason, when the processor has not been ready for a long while.

        A processor that waits without a word (for replicas that cannot catch up, partitions
        never assigned) otherwise looks idle rather than stuck.
        """
        problem = await self.readiness()
        now = self.clock()
        if problem is None:
            if self._warned_at is not None:
                log.info("ready again")
            self._not_ready_since = self._warned_at = None
            return
        if self._not_ready_since is None:
            self._not_ready_since = now
        waited = now - self._not_ready_since
        if waited >= NOT_READY_WARN_S and (
            self._warned_at is None or now - self._warned_at >= NOT_READY_WARN_S
        ):
            self._warned_at = now
            log.warning("not ready for %.0fs: %s", waited, problem)

    async def readiness(self) -> str | None:
        """None when ready, else why not (shown by /readyz)."""
        if not self.ready.is_set():
            return "directory, status and notification replicas not caught up yet"
        if self.app.rebalancing:
            return "rebalancing: partitions being assigned, tables recovering"
        if not self.app.consumer.assignment():
            return "no partitions assigned yet"
        return None


__all__ = ["NOT_READY_WARN_S", "Observer"]
