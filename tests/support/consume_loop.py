"""A fake consumer and producer for the consume loop, and running the loop until a condition."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaTimeoutError

from consumers.worker.loop import ConsumeLoop
from pipeline.metrics import Metrics
from tests.support.events import commitment_export
from tests.support.waiting import eventually_here
from topics import decode, spec_for


@dataclass
class FakeRecord:
    """What aiokafka's `ConsumerRecord` carries that the loop reads."""

    value: bytes | None
    topic: str = "erp.exports"
    partition: int = 0
    offset: int = 0
    key: bytes | None = None
    timestamp: int = 0
    headers: tuple[tuple[str, bytes | None], ...] = ()

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)


def export_record(offset: int, item: str, *, partition: int = 0) -> FakeRecord:
    """A valid `ExportRequested` for commitment `item`, keyed by the item, at `offset`."""
    event = commitment_export(item, "prj-1", export_id=f"exp-{item}-{offset}")
    key = f"acme-builders:commitment:{item}".encode()
    return FakeRecord(json.dumps(event).encode(), partition=partition, offset=offset, key=key)


class FakeConsumer:
    """Hands out its records as `getmany` does (at most `max_records`, grouped per partition)."""

    def __init__(self, records: Iterable[FakeRecord] = ()) -> None:
        self.queue = deque(records)
        self.commits: list[dict[Any, int]] = []
        self.seeks: list[tuple[Any, int]] = []
        self.paused_polls = 0  # calls to `getmany` with every partition paused
        self._assigned = {r.tp for r in self.queue}
        self._paused: set[Any] = set()

    async def getmany(
        self, *partitions: Any, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[Any, list[FakeRecord]]:
        if self._paused >= self._assigned:
            self.paused_polls += 1
        fetched: dict[Any, list[FakeRecord]] = {}
        for record in list(self.queue):  # a paused partition's records stay for later
            if max_records is not None and max_records <= 0:
                break
            if record.tp in self._paused:
                continue
            self.queue.remove(record)
            fetched.setdefault(record.tp, []).append(record)
            max_records = None if max_records is None else max_records - 1
        await asyncio.sleep(0 if fetched else 0.001)
        return fetched

    async def commit(self, offsets: dict[Any, int]) -> None:
        self.commits.append(dict(offsets))

    def committed(self, tp: Any) -> int | None:
        """The last offset committed for `tp`."""
        return next((c[tp] for c in reversed(self.commits) if tp in c), None)

    def highest_commit(self, tp: Any) -> int:
        """The highest offset ever committed for `tp` (-1 for none)."""
        return max((c[tp] for c in self.commits if tp in c), default=-1)

    def assignment(self) -> set[Any]:
        return set(self._assigned)

    def pause(self, *partitions: Any) -> None:
        self._paused.update(partitions)

    def paused(self) -> set[Any]:
        return set(self._paused)

    def resume(self, *partitions: Any) -> None:
        self._paused.difference_update(partitions)

    def seek(self, tp: Any, offset: int) -> None:
        self.seeks.append((tp, offset))


class FakeProducer:
    """Keeps what was sent (decoded); the first `failures` sends time out, as a broker may."""

    def __init__(self, failures: int = 0) -> None:
        self.sent: list[tuple[str, Any, list[tuple[str, bytes]]]] = []
        self.failures = failures

    async def send_and_wait(
        self, topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]
    ) -> None:
        if self.failures:
            self.failures -= 1
            raise KafkaTimeoutError("no ack")
        self.sent.append((topic, decode(value, spec_for(topic)), headers))

    async def send(
        self, topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[None]:
        """Queue a send: the returned future fails as `send_and_wait` would."""
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        try:
            await self.send_and_wait(topic, value, key, headers)
        except KafkaTimeoutError as exc:
            ack.set_exception(exc)
        else:
            ack.set_result(None)
        return ack

    async def flush(self) -> None:
        return None

    def on(self, topic: str) -> list[Any]:
        """The events sent to `topic`."""
        return [event for sent_to, event, _ in self.sent if sent_to == topic]


async def run_until(
    loop: ConsumeLoop, stop: asyncio.Event, done: Callable[[], bool], timeout_s: float = 5.0
) -> None:
    """Run `loop` until `done()` holds (or it ends), then stop it and wait for it to end."""
    task = asyncio.create_task(loop.run())
    try:
        await eventually_here(
            lambda: done() or task.done(), timeout=timeout_s, message="the loop's condition"
        )
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def count(metrics: Metrics, name: str, **labels: str) -> float:
    """A counter's value (0 when it was never counted), e.g. `count(m, "events_consumed", ...)`."""
    value = metrics.registry.get_sample_value(f"erp_pipeline_{name}_total", labels)
    return value or 0.0


async def until(done: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Wait until `done()` holds."""
    await eventually_here(done, timeout=timeout_s, message="the condition")
