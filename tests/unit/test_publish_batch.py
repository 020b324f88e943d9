"""`Publisher.send_all`: every record sent before any ack is awaited, order per partition kept,
a failure re-sent from the first failed record on, and the last record per partition sent alone
when the broker needs exact ends; and the consumer faust builds with the settings' fetch wait."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from consumers.dev import samples as se
from pipeline.metrics import Metrics
from pipeline.processor import routing
from pipeline.processor.app import build_app
from pipeline.processor.config import ROUTES
from pipeline.processor.publish import Publisher
from pipeline.settings import Settings
from tests.support.processor import Harness
from topics import key_of
from topics.record import Record


class Producer:
    """faust's producer as `send_all` uses it: `send` returns a future, settled by `settle`."""

    def __init__(self, fail: set[int] | None = None) -> None:
        self.sent: list[tuple[str, bytes | None, int | None]] = []
        self.futures: list[asyncio.Future[None]] = []
        self.acked_before_send: list[int] = []
        self.fail = fail or set()

    async def send(self, topic: str, key: Any, value: Any, partition: Any, *rest: Any) -> Any:
        self.acked_before_send.append(sum(f.done() for f in self.futures))
        n = len(self.sent)
        self.sent.append((topic, key, partition))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # acknowledged on a later turn of the loop, as a broker's answer would be
        if n in self.fail:
            asyncio.get_running_loop().call_soon(future.set_exception, ConnectionError("gone"))
        else:
            asyncio.get_running_loop().call_soon(future.set_result, None)
        self.futures.append(future)
        return future

    async def send_and_wait(self, *args: Any) -> None:
        await (await self.send(*args))


def _settings(**overrides: Any) -> Settings:
    return Settings(kafka_bootstrap_servers="127.0.0.1:1", processor_store="memory", **overrides)


async def _events(n: int) -> list[Any]:
    harness = Harness()
    for i in range(n):
        await harness.send("erp.submissions", se.project_submitted(f"prj-p{i}"))
    return list(harness.published)


async def test_everything_is_sent_before_any_ack_is_awaited_in_the_order_given() -> None:
    producer, events = Producer(), await _events(5)
    copy = Record("erp.submissions", 3, 9, b"k", b"v")
    await Publisher(_settings(), Metrics(), lambda: producer).send_all(events, [(copy, 1)])
    assert [key for _, key, _ in producer.sent] == [
        *(key_of(e).encode() for e in events),
        b"k",
    ]
    assert producer.sent[-1] == ("erp.item-routes", b"k", 1)
    assert producer.acked_before_send == [0] * 6  # no send waited for an earlier ack


async def test_a_failed_send_is_repeated_from_the_first_failure_on_in_order() -> None:
    producer, events = Producer(fail={1}), await _events(3)
    await Publisher(_settings(), Metrics(), lambda: producer).send_all(events, [])
    keys = [key for _, key, _ in producer.sent]
    assert keys[3:] == keys[1:3]  # records 1 and 2 again, in order, after the batch


async def test_sealed_the_last_record_per_partition_is_sent_after_the_rest_are_acked() -> None:
    producer, events = Producer(), await _events(12)
    publisher = Publisher(_settings(kafka_single_record_batches=True), Metrics(), lambda: producer)
    await publisher.send_all(events, [])
    partitions = ROUTES["ItemStatusChanged"].partitions
    homes = [routing.home_partition(key or b"", partitions) for _, key, _ in producer.sent]
    assert len(producer.sent) == 12 and len(set(homes)) < 12  # partitions with several
    finals = {}
    for n, home in enumerate(homes):
        finals[home] = n
    first_final = min(finals.values())
    # the finals come last, each the last of its partition, after every other record was acked
    assert sorted(finals.values()) == list(range(first_final, len(homes)))
    assert producer.acked_before_send[first_final] == first_final


@pytest.mark.parametrize("wait_ms", [20, 250])
async def test_fausts_consumer_is_built_with_the_settings_fetch_wait(wait_ms: int) -> None:
    processor = build_app(_settings(kafka_fetch_max_wait_ms=wait_ms))
    app = processor.app
    thread = app.consumer._thread
    consumer = thread._create_worker_consumer(app.transport)
    try:
        assert consumer._fetch_max_wait_ms == wait_ms
    finally:
        await consumer.stop()
