"""Worker `processor`: creates the topics the faust app needs, then runs it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pipeline.kafka import create_topics
from pipeline.processor.app import build_app, internal_topic_specs, run_worker
from pipeline.settings import Settings
from topics import ALL_TOPICS


def run(settings: Settings) -> None:
    """Run the approval-queue processor until SIGTERM/SIGINT."""
    # faust creates only the last level of its data directory
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    asyncio.run(create_topics(settings, (*ALL_TOPICS, *internal_topic_specs())))
    run_worker(build_app(settings), settings.log_level)
