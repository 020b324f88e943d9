"""Worker `console`: the approver's console served by uvicorn until SIGTERM / SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn

from consumers.console.app import build_app
from consumers.console.settings import ConsoleSettings
from consumers.worker.runtime import Runtime, run_worker
from pipeline.settings import ConfigurationError, Settings

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the worker runtime owns SIGTERM / SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind(console: ConsoleSettings) -> socket.socket:
    """The console's listening socket on CONSOLE_HOST:CONSOLE_PORT.

    Raises ConfigurationError naming CONSOLE_PORT when it cannot be bound.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in console.host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((console.host, console.port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(
            f"cannot serve the console on CONSOLE_HOST={console.host} "
            f"CONSOLE_PORT={console.port} ({exc.strerror or exc})"
        ) from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def serve(runtime: Runtime) -> None:
    """Serve the console on CONSOLE_HOST:CONSOLE_PORT until the runtime is stopped; its
    metrics are the worker's (`/metrics` on METRICS_PORT, and on the console's own port)."""
    settings = runtime.settings
    console = ConsoleSettings()
    runtime.watch_database(settings.require_database_url())
    sock = bind(console)
    app = build_app(settings, console, registry=runtime.metrics.registry)
    server = _Server(uvicorn.Config(app, log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    host, port = sock.getsockname()[:2]
    log.info("console on http://%s:%d/", host, port)
    stop = asyncio.create_task(runtime.stop.wait())
    try:
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        server.should_exit = True
        await task
        stop.cancel()
        sock.close()


def run(settings: Settings) -> None:
    """Worker entry point (`erp-pipeline run console`): runs until SIGTERM / SIGINT."""
    run_worker(settings, serve)
