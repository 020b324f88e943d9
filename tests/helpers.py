"""Helpers for integration tests: publishing examples, end offsets, running the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from pipeline.kafka import make_consumer, make_producer, partitions_of, publish, stop_consumer
from pipeline.settings import Settings
from topics import TopicSpec, decode, spec_for


async def publish_dicts(settings: Settings, topic: str, events: list[dict[str, Any]]) -> None:
    """Validate contract events (dicts) and publish them with their keys and headers."""
    spec = spec_for(topic)
    producer = make_producer(settings)
    await producer.start()
    try:
        for event in events:
            await publish(producer, settings, spec, decode(json.dumps(event), spec))
    finally:
        await producer.stop()


async def publish_raw(
    settings: Settings, topic: str, value: bytes, key: bytes | None = None
) -> None:
    """Publish bytes as they are (for hostile input)."""
    producer = make_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(settings.topic(topic), value, key=key)
    finally:
        await producer.stop()


async def end_offsets(settings: Settings, spec: TopicSpec) -> dict[int, int]:
    """Partition → end offset of a topic now."""
    name = spec.full_name(settings.erp_topic_prefix)
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        partitions = await partitions_of(consumer, name)
        ends = await consumer.end_offsets(partitions)
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await stop_consumer(consumer)


def cli(
    env: dict[str, str], *args: str, input_text: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `erp-pipeline ARGS` as a user would, against the test stack."""
    return subprocess.run(
        [sys.executable, "-m", "consumers.cli", *args],
        env=env,
        input=input_text,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
