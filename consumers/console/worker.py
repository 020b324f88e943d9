"""Worker `console`: the approver's console served by uvicorn until SIGTERM / SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import uvicorn

from consumers.console.app import build_app
from consumers.console.settings import ConsoleSettings
from consumers.worker.runtime import Runtime, run_worker
from pipeline.settings import Settings

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the worker runtime owns SIGTERM / SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(runtime: Runtime) -> None:
    """Serve the console on CONSOLE_HOST:CONSOLE_PORT until the runtime is stopped; its
    metrics are the worker's (`/metrics` on METRICS_PORT, and on the console's own port)."""
    settings = runtime.settings
    console = ConsoleSettings()
    runtime.watch_database(settings.require_database_url())
    app = build_app(settings, console, registry=runtime.metrics.registry)
    server = _Server(uvicorn.Config(app, host=console.host, port=console.port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    log.info("console on http://%s:%d/", console.host, console.port)
    stop = asyncio.create_task(runtime.stop.wait())
    await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    await task
    stop.cancel()
    if server.started is False:
        raise SystemExit(f"the console could not listen on {console.host}:{console.port}")


def run(settings: Settings) -> None:
    """Worker entry point (`erp-pipeline run console`): runs until SIGTERM / SIGINT."""
    run_worker(settings, serve)
