"""What every aiokafka worker shares: signals, `/metrics` + health, consumer lag, readiness."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from aiokafka.errors import KafkaError

from consumers.worker import db
from pipeline.metrics import Metrics
from pipeline.observability import HealthServer
from pipeline.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Handed to a worker's `serve`: its metrics, and where it registers what to watch."""

    settings: Settings
    metrics: Metrics
    stop: asyncio.Event
    consumers: list[tuple[str, Any]] = field(default_factory=list)
    database_urls: list[str] = field(default_factory=list)
    samplers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @classmethod
    def local(cls, settings: Settings, stop: asyncio.Event | None = None) -> Runtime:
        """A runtime for a worker run in-process (tests): its own registry, no HTTP server."""
        return cls(settings, Metrics(process=False), stop or asyncio.Event())

    def watch_consumer(self, consumer: Any, group: str) -> None:
        """Report this consumer's lag and count its assignment in readiness."""
        self.consumers.append((group, consumer))

    def watch_database(self, url: str, name: str = "DATABASE_URL") -> None:
        """Count this database's reachability in readiness.

        Raises ConfigurationError naming `name` when `url` is not a connection URL or string.
        """
        db.check_url(url, name)
        self.database_urls.append(url)

    def committed(self, group: str) -> None:
        """Record an offset commit of `group` (time since last commit)."""
        self.metrics.committed(group)

    async def ready(self) -> str | None:
        """None when connected to the broker and the databases with partitions assigned."""
        for group, consumer in self.consumers:
            if not consumer.assignment():
                return f"{group}: no partitions assigned yet"
        for url in self.database_urls:
            try:
                async with await psycopg.AsyncConnection.connect(url, connect_timeout=2) as conn:
                    await conn.execute("SELECT 1")
            except psycopg.Error as exc:
                return f"database unreachable: {type(exc).__name__}"
        return None

    async def sample(self) -> None:
        """Refresh consumer lag (end offset - committed) and the workers' own samplers."""
        for group, consumer in self.consumers:
            assigned = list(consumer.assignment())
            if not assigned:
                continue
            try:
                ends = await consumer.end_offsets(assigned)
                for tp in assigned:
                    committed = await consumer.committed(tp) or 0
                    self.metrics.consumer_lag.labels(group, tp.topic, str(tp.partition)).set(
                        max(0, ends[tp] - committed)
                    )
            except KafkaError as exc:
                log.debug("lag sample failed: %r", exc)
        for sampler in self.samplers:
            try:
                await sampler()
            except Exception as exc:  # a sampler must never take the worker down
                log.warning("metric sampler failed: %r", exc)


async def _sample_forever(runtime: Runtime) -> None:
    while not runtime.stop.is_set():
        started = time.monotonic()
        await runtime.sample()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                runtime.stop.wait(),
                max(0.1, runtime.settings.metrics_sample_interval_s - (time.monotonic() - started)),
            )


def run_worker(settings: Settings, serve: Callable[[Runtime], Awaitable[None]]) -> None:
    """Run `serve(runtime)` with `/metrics`, `/healthz`, `/readyz` until SIGTERM / SIGINT.

    Raises ConfigurationError before anything starts when `METRICS_PORT` cannot be bound.
    """

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        runtime = Runtime(settings, Metrics(), stop)
        server = HealthServer(runtime.metrics, settings.metrics_port, runtime.ready)
        await server.start()
        sampler = asyncio.create_task(_sample_forever(runtime))
        try:
            await serve(runtime)
        finally:
            stop.set()
            await sampler
            await server.stop()

    asyncio.run(main())
