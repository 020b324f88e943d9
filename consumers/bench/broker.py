"""What one fetch costs the broker: a partition's last record, timed, by how much it holds."""

from __future__ import annotations

import logging
import statistics
import time
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from pipeline.kafka import make_consumer, partitions_of, stop_consumer
from pipeline.settings import Settings

log = logging.getLogger(__name__)

#: Fetches timed per partition (the median is reported).
TRIES = 25


async def last_record_fetch(settings: Settings, topics: list[str]) -> list[dict[str, Any]]:
    """For each topic, its fullest partition and the median milliseconds a fetch of that
    partition's last record takes (seek to the end minus one, fetch it).

    Rows: `topic`, `partition`, `end_offset`, `fetch_ms` (median of `TRIES`),
    or `fetch_ms` None when the partition is empty. On the embedded broker (Tansu's memory
    engine) a fetch lists every batch the partition holds before reading one, so the figure
    grows with the partition's batch count; on Apache Kafka an offset index finds the batch.
    Read-only: the workers may go on meanwhile. [] when the broker could not be asked.
    """
    try:
        return await _fetches(settings, topics)
    except KafkaError as exc:  # a figure of its own: it must not sink the rest of the report
        log.warning("broker fetch timing failed: %r", exc)
        return []


async def _fetches(settings: Settings, topics: list[str]) -> list[dict[str, Any]]:
    rows = []
    for topic in topics:
        consumer = make_consumer(settings, group_id=None, enable_auto_commit=False)
        try:
            await consumer.start()  # inside: a consumer that failed to start is closed too
            tps = await partitions_of(consumer, topic)
            if not tps:
                continue
            ends = await consumer.end_offsets(tps)
            tp, end = max(ends.items(), key=lambda kv: kv[1])
            rows.append(
                {
                    "topic": topic,
                    "partition": tp.partition,
                    "end_offset": end,
                    "fetch_ms": await _median_fetch_ms(consumer, tp, end) if end else None,
                }
            )
        finally:
            await stop_consumer(consumer)
    return rows


async def _median_fetch_ms(consumer: Any, tp: TopicPartition, end: int) -> float | None:
    """None when the last record never came back (e.g. the broker removed it)."""
    consumer.assign([tp])
    timings = []
    for _ in range(TRIES):
        consumer.seek(tp, end - 1)
        started = time.perf_counter()
        got = await consumer.getmany(tp, timeout_ms=5000)
        if not got.get(tp):
            return None
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)
