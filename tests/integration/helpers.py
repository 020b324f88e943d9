"""Publishing contract events and waiting for the processor's outputs, with deadlines."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from pipeline.kafka import make_producer, read_all
from pipeline.settings import Settings
from topics import ContractError, TopicSpec, decode

ROOT = Path(__file__).resolve().parents[2]


def publish(
    settings: Settings, spec: TopicSpec, *raw: dict[str, Any] | bytes, key: bytes | None = None
) -> None:
    """Publish raw events (dicts as JSON, keyed like the contract) or arbitrary bytes."""

    async def go() -> None:
        producer = make_producer(settings)
        await producer.start()
        try:
            for item in raw:
                value = item if isinstance(item, bytes) else json.dumps(item).encode()
                record_key = key
                if record_key is None and isinstance(item, dict):
                    record_key = _key(item)
                await producer.send_and_wait(settings.topic(spec.name), value, key=record_key)
        finally:
            await producer.stop()

    asyncio.run(go())


def _key(item: dict[str, Any]) -> bytes:
    if "item" in item:
        return f"{item['company_id']}:{item['item']['type']}:{item['item']['id']}".encode()
    if item["event_type"] == "ApproverUpdated":
        return f"{item['company_id']}:user:{item['payload']['user_id']}".encode()
    return f"{item['company_id']}:settings".encode()


def events(settings: Settings, spec: TopicSpec) -> list[Any]:
    """Every decodable event on a topic now."""
    found = []
    for record in asyncio.run(read_all(settings, spec)):
        with suppress(ContractError):
            found.append(decode(record.value, spec))
    return found


def wait_for(
    settings: Settings,
    spec: TopicSpec,
    match: Callable[[Any], bool],
    count: int = 1,
    timeout_s: float = 60.0,
) -> list[Any]:
    """Poll the topic until `count` events match (or fail when the deadline passes)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = [e for e in events(settings, spec) if match(e)]
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{len(found)}/{count} matching events on {spec.name} after {timeout_s:.0f}s"
            )
        time.sleep(0.2)


def about(item_id: str, event_type: str | None = None) -> Callable[[Any], bool]:
    """Match events about one item (and of one type)."""
    return lambda e: (
        e.item is not None
        and e.item.id == item_id
        and (event_type is None or e.event_type == event_type)
    )


@contextmanager
def processor(env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`erp-pipeline run processor` as a subprocess; SIGTERM (then SIGKILL) on exit."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "consumers.cli", "run", "processor"],
            env={**env, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes], kill: bool = False) -> None:
    """Stop a worker: SIGKILL at once when `kill`, else SIGTERM with a bounded wait."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def env_for(base: dict[str, str], data_dir: Path, **extra: str) -> dict[str, str]:
    """Worker environment with its own data directory and quick timers."""
    return {
        **base,
        "DATA_DIR": str(data_dir),
        "KAFKA_SESSION_TIMEOUT_MS": "6000",
        "PROCESSOR_SUMMARY_INTERVAL_S": "1",
        "METRICS_PORT": "0",
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        **extra,
    }
