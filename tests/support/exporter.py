"""The exporter under test: in this process, or as `erp-pipeline run exporter`."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator

from consumers.export.worker import serve
from consumers.worker.runtime import Runtime
from pipeline.settings import Settings
from tests.support.processes import start_worker


@contextlib.asynccontextmanager
async def exporter_running(settings: Settings) -> AsyncIterator[None]:
    """The exporter, in this process, for the duration of the block."""
    stop = asyncio.Event()
    task = asyncio.create_task(serve(Runtime.local(settings, stop)))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def exporter_process(
    env: dict[str, str], settings: Settings, **overrides: str
) -> subprocess.Popen[bytes]:
    """`erp-pipeline run exporter` as a child process against `settings`."""
    child = {
        **env,
        "ERP_TOPIC_PREFIX": settings.erp_topic_prefix,
        "KAFKA_SESSION_TIMEOUT_MS": str(settings.kafka_session_timeout_ms),
        "LOG_LEVEL": "WARNING",
        **overrides,
    }
    return start_worker("exporter", child)
