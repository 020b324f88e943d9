"""Shared CLI plumbing: settings, running coroutines, turning our errors into clear messages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import click
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from pipeline.kafka import KafkaUnavailable
from pipeline.settings import Settings

T = TypeVar("T")


def load_settings() -> Settings:
    """Settings from the environment, or a clear CLI error naming the bad variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise click.ClickException(f"invalid configuration: {problems}") from None


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion, turning configuration errors and an unreachable broker
    into CLI errors (exit 1, one message, no traceback).

    aiokafka logs every failed connection attempt at ERROR (hundreds of identical lines
    before it gives up); a one-shot command reports the outcome once instead, so those
    per-attempt records are dropped while the coroutine runs.
    """
    with broker_errors():
        return asyncio.run(coroutine)


@contextlib.contextmanager
def broker_errors() -> Iterator[None]:
    """Within the block: an unreachable broker or a setting that is not set raises a CLI
    error (exit 1, one message), and aiokafka's per-attempt connection errors are dropped."""
    client_log = logging.getLogger("aiokafka")
    quiet = _DropConnectionAttempts()
    client_log.addFilter(quiet)
    try:
        yield
    except (KafkaError, KafkaUnavailable) as exc:
        raise broker_error(exc) from None
    except RuntimeError as exc:
        if "is not set" in str(exc):
            raise click.ClickException(str(exc)) from None
        raise
    finally:
        client_log.removeFilter(quiet)


class _DropConnectionAttempts(logging.Filter):
    """Drops aiokafka's per-attempt "Unable connect to ..." records."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Unable connect to")


def broker_error(exc: Exception) -> click.ClickException:
    """The CLI error for a broker that cannot be reached or refused a request."""
    where = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS")
    return click.ClickException(f"the Kafka broker at {where} cannot be used: {exc}")


def setup_logging(settings: Settings) -> None:
    """Plain, timestamped logs on stderr."""
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
