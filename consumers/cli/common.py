"""Shared CLI plumbing: settings, running coroutines, turning our errors into clear messages."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

import click
from pydantic import ValidationError

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
    """Run a coroutine to completion, turning configuration errors into CLI errors."""
    try:
        return asyncio.run(coroutine)
    except RuntimeError as exc:
        if "is not set" in str(exc):
            raise click.ClickException(str(exc)) from None
        raise


def setup_logging(settings: Settings) -> None:
    """Plain, timestamped logs on stderr."""
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
