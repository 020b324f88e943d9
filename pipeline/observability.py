"""The HTTP side of every worker: `/metrics`, `/healthz` (alive) and `/readyz` (ready)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pipeline.metrics import Metrics
from pipeline.settings import ConfigurationError

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[str | None]]

#: Where the server listens: every interface (Prometheus and probes scrape from outside the pod).
ANY_HOST = "0.0.0.0"  # noqa: S104


def bind_metrics_port(port: int, host: str = ANY_HOST) -> socket.socket:
    """A socket bound to `port` (`METRICS_PORT`; 0: any free port), for `HealthServer(sock=)`.

    A worker whose port is taken (by another worker on the host, most often) must not run
    blind, with a probe on that port answering for someone else: it stops at start-up.

    Raises ConfigurationError naming METRICS_PORT when the port cannot be bound.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp's own sites
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(
            f"cannot serve /metrics, /healthz and /readyz on METRICS_PORT={port}"
            f" ({exc.strerror or exc}): give each worker on this host its own METRICS_PORT"
            " (0: any free port)"
        ) from None
    sock.setblocking(False)
    return sock


class HealthServer:
    """Serves metrics and health on `port`, or on `sock` when given (`bind_metrics_port`,
    for a process that binds its port before it starts anything else).

    `ready` returns None when the worker is ready, else the reason it is not (for example
    "partitions not assigned"), which `/readyz` shows with status 503.
    """

    def __init__(
        self,
        metrics: Metrics,
        port: int,
        ready: ReadinessCheck,
        host: str = ANY_HOST,
        *,
        sock: socket.socket | None = None,
    ) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self._sock = sock
        self._ready = ready
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Start listening.

        Raises ConfigurationError naming METRICS_PORT when the port cannot be bound.
        """
        sock = self._sock or bind_metrics_port(self.port, self.host)
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        host, port = sock.getsockname()[:2]
        log.info("metrics and health on http://%s:%d/metrics", host, port)

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
