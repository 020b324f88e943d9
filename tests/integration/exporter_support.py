"""Helpers of the exporter tests: isolated topics, a seeded ERP company, publishing, polling."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import psycopg

from consumers.dev import erp_seed
from consumers.export.worker import serve
from consumers.worker.runtime import Runtime
from pipeline.kafka import create_topics, make_producer, read_all
from pipeline.settings import Settings
from topics import TopicSpec, decode, encode, headers_for, key_of
from topics.specs import EXPORTS


async def isolated(settings: Settings, name: str) -> Settings:
    """Settings with topics of their own (and so a consumer group of their own)."""
    mine = settings.model_copy(update={"erp_topic_prefix": f"{settings.erp_topic_prefix}{name}."})
    await create_topics(mine)
    return mine


def seeded_company(settings: Settings, company: str) -> str:
    """Seed the demo templates and vendors for `company` in the reference ERP."""
    erp_seed.seed(settings.require_erp_database_url(), company)
    return company


async def publish_exports(settings: Settings, raw_events: list[dict[str, Any]]) -> None:
    """Publish `ExportRequested` events (validated first) to erp.exports, waiting for the acks."""
    producer = make_producer(settings)
    await producer.start()
    try:
        futures = []
        for raw in raw_events:
            event = decode(json.dumps(raw), EXPORTS)
            futures.append(
                await producer.send(
                    EXPORTS.full_name(settings.erp_topic_prefix),
                    encode(event),
                    key=key_of(event).encode(),
                    headers=headers_for(event),
                )
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def publish_bytes(settings: Settings, key: bytes, value: bytes) -> None:
    """Publish raw bytes to erp.exports (bad input)."""
    producer = make_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(EXPORTS.full_name(settings.erp_topic_prefix), value, key=key)
    finally:
        await producer.stop()


async def records_until(
    settings: Settings, spec: TopicSpec, done: Callable[[list[Any]], bool], timeout_s: float = 30.0
) -> list[Any]:
    """Poll a topic until `done(records)` holds; fail when the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        records = await read_all(settings, spec)
        if done(records):
            return records
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{spec.name}: condition not met in {timeout_s}s ({len(records)} records)"
            )
        await asyncio.sleep(0.2)


def events_of(records: list[Any], spec: TopicSpec) -> list[Any]:
    """Decode records of a topic."""
    return [decode(record.value, spec) for record in records]


def query(settings: Settings, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows from the reference ERP's database."""
    with psycopg.connect(settings.require_erp_database_url()) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


async def until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll `check` until true; fail with `what` when the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout_s}s: {what}")
        await asyncio.sleep(0.1)


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
    child["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", "consumers.cli", "run", "exporter"],
        env=child,
        stdin=subprocess.DEVNULL,
    )
