"""Worker `processor`: creates the topics the faust app needs, then runs it."""

from __future__ import annotations

import asyncio

from consumers.kafka import create_topics
from pipeline.app import build_app, internal_topic_specs, run_worker
from pipeline.settings import Settings
from topics import ALL_TOPICS


def run(settings: Settings) -> None:
    """Run the approval-queue processor until SIGTERM/SIGINT."""
    asyncio.run(create_topics(settings, (*ALL_TOPICS, *internal_topic_specs())))
    run_worker(build_app(settings), settings.log_level)
