"""Start-up broker calls that never answer are bounded, retried, logged and counted; partitions the
consumer never fetched are seen by the stall watchdog; a processor that stays unready says so."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiokafka import TopicPartition

from pipeline.kafka import KafkaUnavailable, patiently
from pipeline.metrics import Metrics
from pipeline.processor.healing import Healing
from pipeline.processor.observe import NOT_READY_WARN_S, Observer
from pipeline.processor.probe import PartitionProbe
from pipeline.processor.replicas import TopicReplica
from pipeline.processor.store import ItemStore
from pipeline.settings import Settings
from tests.support.processor import Probe
from topics.specs import DIRECTORY, SUBMISSIONS

SETTINGS = Settings(kafka_bootstrap_servers="127.0.0.1:1")


async def _never() -> Any:
    """A broker call that never answers."""
    await asyncio.Event().wait()


def _retries(metrics: Metrics, call: str, reason: str = "timeout") -> float:
    value = metrics.registry.get_sample_value(
        "erp_pipeline_broker_call_retries_total", {"call": call, "reason": reason}
    )
    return value or 0.0


class FakeConsumer:
    """A group-less consumer whose calls named in `hang` never answer."""

    def __init__(self, hang: set[str], end: int = 0) -> None:
        self.hang, self.end = hang, end
        self.stopped = False

    async def _maybe_hang(self, call: str) -> None:
        if call in self.hang:
            await _never()

    async def start(self) -> None:
        await self._maybe_hang("start")

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.partitions = partitions

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        await self._maybe_hang("seek_to_beginning")

    async def beginning_offsets(self, partitions: list[TopicPartition]) -> dict[Any, int]:
        await self._maybe_hang("beginning_offsets")
        return dict.fromkeys(partitions, 0)

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[Any, int]:
        await self._maybe_hang("end_offsets")
        return dict.fromkeys(partitions, self.end)

    async def getmany(self, *partitions: Any, timeout_ms: int = 0, **kwargs: Any) -> dict[Any, Any]:
        await asyncio.sleep(timeout_ms / 1000)
        return {}

    async def stop(self) -> None:
        self.stopped = True


class Consumers:
    """Hands out fake consumers: the first `hanging` ones hang on `call`, later ones answer."""

    def __init__(self, call: str, hanging: int) -> None:
        self.call, self.hanging = call, hanging
        self.made: list[FakeConsumer] = []

    def __call__(self, settings: Settings) -> FakeConsumer:
        hang = {self.call} if len(self.made) < self.hanging else set()
        self.made.append(FakeConsumer(hang))
        return self.made[-1]


async def test_patiently_retries_a_call_that_does_not_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics, calls = Metrics(process=False), []

    async def answers_second_time() -> str:
        calls.append(1)
        if len(calls) == 1:
            await _never()
        return "answer"

    got = await patiently(
        answers_second_time, what="probe_offsets", timeout_s=0.05, metrics=metrics, backoff_s=0.01
    )
    assert got == "answer" and len(calls) == 2
    assert _retries(metrics, "probe_offsets") == 1
    assert "probe_offsets: no answer in 0.05s (attempt 1); retrying" in caplog.text


async def test_patiently_gives_up_after_its_attempts() -> None:
    with pytest.raises(KafkaUnavailable, match=r"replica_start: no answer in 0\.05s, 2 attempts"):
        await patiently(_never, what="replica_start", timeout_s=0.05, attempts=2, backoff_s=0.01)


async def test_a_replica_whose_broker_never_answers_at_start_retries_with_a_new_consumer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics, consumers = Metrics(process=False), Consumers("seek_to_beginning", hanging=1)
    replica = TopicReplica(
        SETTINGS, DIRECTORY, print, metrics=metrics, new_consumer=consumers, call_timeout_s=0.05
    )
    await asyncio.wait_for(replica.start(), 10)
    try:
        assert len(consumers.made) == 2 and consumers.made[0].stopped
        assert _retries(metrics, "replica_start") == 1
        assert "replica_start: no answer" in caplog.text
    finally:
        await replica.stop()


async def test_a_replica_sync_whose_end_offsets_never_come_gives_up_in_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = Metrics(process=False)
    consumer = FakeConsumer(set())
    replica = TopicReplica(
        SETTINGS, DIRECTORY, print, metrics=metrics, new_consumer=lambda s: consumer
    )
    await replica.start()
    consumer.hang.add("end_offsets")
    try:
        assert await asyncio.wait_for(replica.sync(timeout_s=0.3), 5) is False
        assert _retries(metrics, "replica_end_offsets") >= 1
        assert "is behind after 0s" in caplog.text
        consumer.hang.clear()
        assert await replica.sync(timeout_s=5) is True  # an empty topic: nothing to wait for
    finally:
        await replica.stop()


async def test_the_probe_retries_offsets_the_broker_does_not_answer() -> None:
    metrics, consumers = Metrics(process=False), Consumers("beginning_offsets", hanging=0)
    probe = PartitionProbe(SETTINGS, metrics=metrics, new_consumer=consumers, call_timeout_s=0.05)
    await probe.log_start("erp.submissions", 0)  # started
    consumers.made[0].hang.add("beginning_offsets")
    task = asyncio.create_task(probe.log_start("erp.submissions", 0))
    while _retries(metrics, "probe_offsets") < 1:
        await asyncio.sleep(0.01)
    consumers.made[0].hang.clear()
    assert await asyncio.wait_for(task, 5) == 0
    await probe.stop()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FaustConsumer:
    """faust's consumer as the watchdog sees it: assigned partitions, none ever fetched."""

    def __init__(self, assigned: list[TopicPartition]) -> None:
        self.assigned = assigned

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def highwater(self, tp: TopicPartition) -> int | None:
        return None


class App:
    def __init__(self, consumer: FaustConsumer) -> None:
        self.consumer, self.rebalancing = consumer, False


async def test_the_watchdog_seeks_a_partition_never_fetched_that_has_records() -> None:
    tp = TopicPartition(SUBMISSIONS.name, 2)
    seeks: list[tuple[tuple[str, int], int]] = []

    async def seek(partition: tuple[str, int], offset: int) -> None:
        seeks.append((partition, offset))

    ready, clock, metrics = asyncio.Event(), Clock(), Metrics(process=False)
    ready.set()
    store = ItemStore({})
    probe = Probe(start=0, records={0, 1, 2})
    healing = Healing(App(FaustConsumer([tp])), SETTINGS, store, probe, seek, metrics, ready, clock)
    await healing.heal_stalls()
    assert seeks == []  # just started: not idle long enough to call it a stall
    clock.now += 11
    await healing.heal_stalls()
    assert seeks == [((SUBMISSIONS.name, 2), 0)]
    reseeks = metrics.registry.get_sample_value(
        "erp_pipeline_processor_reseeks_total", {"topic": SUBMISSIONS.name, "cause": "unfetched"}
    )
    assert reseeks == 1


async def test_the_watchdog_leaves_an_empty_partition_never_fetched_alone() -> None:
    tp = TopicPartition(SUBMISSIONS.name, 0)
    seeks: list[Any] = []

    async def seek(partition: tuple[str, int], offset: int) -> None:
        seeks.append(partition)

    ready, clock = asyncio.Event(), Clock()
    ready.set()
    probe = Probe(start=0, records=set())
    healing = Healing(
        App(FaustConsumer([tp])),
        SETTINGS,
        ItemStore({}),
        probe,
        seek,
        Metrics(process=False),
        ready,
        clock,
    )
    clock.now += 61
    await healing.heal_stalls()
    assert seeks == []


async def test_a_processor_not_ready_for_long_says_why(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    ready, clock = asyncio.Event(), Clock()

    async def nothing() -> None:
        return None

    observer = Observer(
        App(FaustConsumer([])), SETTINGS, Metrics(process=False), ready, nothing, clock
    )
    await observer.watch_readiness()
    clock.now += NOT_READY_WARN_S - 1
    await observer.watch_readiness()
    assert "not ready" not in caplog.text
    clock.now += 1
    await observer.watch_readiness()
    assert "not ready for 60s: directory, status and notification replicas not caught up yet" in (
        caplog.text
    )
    clock.now += 1
    await observer.watch_readiness()
    assert caplog.text.count("not ready for") == 1  # once a minute, not every beat
