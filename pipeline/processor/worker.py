"""Worker `processor`: checks its store, holds its local state alone, creates its topics, drops
local state the changelog does not back (`local_state`), then runs the faust app."""

from __future__ import annotations

import asyncio
import importlib
import logging
from pathlib import Path

import faust

from pipeline.kafka import create_topics
from pipeline.observability import bind_metrics_port
from pipeline.processor.app import Processor, build_app
from pipeline.processor.config import internal_topic_specs
from pipeline.processor.local_state import (
    drop_unbacked_state,
    drop_unclean_state,
    hold_state_dir,
    mark_clean_shutdown,
)
from pipeline.settings import ConfigurationError, Settings
from topics import ALL_TOPICS
from topics.specs import INTERNAL_TOPICS

log = logging.getLogger(__name__)

#: The package each table store needs (`PROCESSOR_STORE`); None: nothing beyond faust.
STORE_PACKAGES: dict[str, str | None] = {"rocksdb": "rocksdict", "memory": None}


def check_store(settings: Settings) -> None:
    """Fail at once, naming the package and the setting, if the configured store is unusable.

    Without this, faust finds out only once the worker has started, and the process dies with
    a message that names neither the setting nor the package this project installs.

    Raises ConfigurationError.
    """
    package = STORE_PACKAGES[settings.processor_store]
    if package is None:
        return
    try:
        importlib.import_module(package)
    except ImportError as exc:
        raise ConfigurationError(
            f"PROCESSOR_STORE={settings.processor_store} needs the {package} package, which "
            f"cannot be imported here ({exc}). It is a dependency of erp-pipeline: reinstall "
            "the package (`pip install -e .` in a checkout), or set PROCESSOR_STORE=memory to "
            "keep the table in memory, restored from its changelog at every start."
        ) from None


def run_faust_worker(processor: Processor, loglevel: str = "info") -> None:
    """Run the faust worker until SIGTERM/SIGINT; a clean stop marks the local state sound."""
    worker = faust.Worker(processor.app, loglevel=loglevel.lower(), quiet=True)
    # faust's terminal spinner, kept at WARNING and above, sets the root logger to DEBUG so that
    # every log call spins it: each of aiokafka's per-request debug calls then builds a record
    # (~7 % of the processor's CPU). A worker has no terminal to spin for.
    worker.spinner = None
    quiet_buffer_warnings()
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        if not exc.code:
            mark_clean_shutdown(processor.settings)
        raise


class _BufferFullWarnings(logging.Filter):
    """Drops faust's "producer buffer full size N" warnings (see `quiet_buffer_warnings`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("producer buffer full size")


def quiet_buffer_warnings() -> None:
    """Drop faust's "producer buffer full size N" warnings, once per process.

    faust's producer logs one whenever more than 100 table writes wait to be sent, which every
    batch of more than 100 records does by design (the step flushes them itself): thousands of
    lines a minute under load, about nothing an operator can act on.
    """
    logger = logging.getLogger("faust.transport.producer")
    if not any(isinstance(f, _BufferFullWarnings) for f in logger.filters):
        logger.addFilter(_BufferFullWarnings())


def run(settings: Settings) -> None:
    """Run the approval-queue processor until SIGTERM/SIGINT.

    Raises ConfigurationError at once when the configured table store cannot be used,
    `METRICS_PORT` cannot be bound, or another processor on this host uses the same `DATA_DIR`.
    """
    check_store(settings)
    metrics_socket = bind_metrics_port(settings.metrics_port)
    # faust creates only the last level of its data directory
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    with hold_state_dir(settings):
        drop_unclean_state(settings)
        asyncio.run(_prepare(settings))
        processor = build_app(settings)
        processor.observer.sock = metrics_socket
        run_faust_worker(processor, settings.log_level)


async def _prepare(settings: Settings) -> None:
    """Create the topics (under ACLs only faust's own, `erp-processor-*`, may be: the set-up
    job creates the others); drop local table state their changelog does not back."""
    await create_topics(
        settings,
        (*ALL_TOPICS, *INTERNAL_TOPICS, *internal_topic_specs()),
        unauthorized_ok=True,
    )
    await drop_unbacked_state(settings)


__all__ = ["STORE_PACKAGES", "check_store", "quiet_buffer_warnings", "run", "run_faust_worker"]
