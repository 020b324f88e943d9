"""The HTTP side of every worker: `/metrics`, `/healthz` (alive) and `/readyz` (ready)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pipeline.metrics import Metrics

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[str | None]]


class HealthServer:
    """Serves metrics and health on `port`.

    `ready` returns None when the worker is ready, else the reason it is not (for example
    "partitions not assigned"), which `/readyz` shows with status 503.
    """

    def __init__(
        self,
        metrics: Metrics,
        port: int,
        ready: ReadinessCheck,
        host: str = "0.0.0.0",  # noqa: S104  (Prometheus and probes scrape from outside the pod)
    ) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self._ready = ready
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Start listening."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self.host, self.port).start()
        except OSError as exc:
            # The worker's job matters more than its metrics: keep working, say it loudly.
            log.error("cannot serve metrics on %s:%d: %s", self.host, self.port, exc)
            return
        log.info("metrics and health on http://%s:%d/metrics", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def _readyz(self, request: web.Request) -> web.Response:
        try:
            problem = await self._ready()
        except Exception as exc:  # a failing check means "not ready", never a 500
            problem = f"readiness check failed: {exc}"
        if problem is None:
            return web.json_response({"status": "ready"})
        return web.json_response({"status": "not ready", "reason": problem}, status=503)
