"""The consume loop with a fake consumer and producer: dead letters, retries, commits, order."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
from aiokafka import TopicPartition

from consumers.worker import loop as loop_module
from consumers.worker.loop import ConsumeLoop
from consumers.worker.subscriber import Consumed, Order, Outcome, Subscriber
from pipeline.metrics import Metrics
from pipeline.settings import Settings
from tests.support.consume_loop import (
    FakeConsumer,
    FakeProducer,
    FakeRecord,
    count,
    export_record,
    run_until,
    until,
)
from topics.record import Record
from topics.specs import EXPORTS

TP0 = TopicPartition("erp.exports", 0)
TP1 = TopicPartition("erp.exports", 1)
BAD = b"{not json"


class Recorder:
    """A handler that records the (partition, offset) it is handed and answers with `answer`."""

    def __init__(self, answer: Callable[[Record], Awaitable[Outcome]] | None = None) -> None:
        self.calls: list[tuple[int, int]] = []
        self.answer = answer

    async def __call__(self, event: Any, record: Record) -> Outcome:
        self.calls.append((record.partition, record.offset))
        return await self.answer(record) if self.answer else Outcome.PROCESSED


def make_loop(
    records: Sequence[FakeRecord],
    handle: Any = None,
    *,
    handle_batch: Any = None,
    producer: FakeProducer | None = None,
    **options: Any,
) -> tuple[ConsumeLoop, FakeConsumer, FakeProducer, asyncio.Event]:
    subscriber: Subscriber[Any] = Subscriber(
        EXPORTS,
        "erp-test",
        handle=handle,
        handle_batch=handle_batch,
        **{"retry_base_s": 0.001, "retry_max_s": 0.004, **options},
    )
    consumer, producer, stop = FakeConsumer(records), producer or FakeProducer(), asyncio.Event()
    loop = ConsumeLoop(
        subscriber,
        consumer,  # type: ignore[arg-type]
        producer,  # type: ignore[arg-type]
        Settings(),
        stop,
        Metrics(process=False),
        commit_every_s=0.005,
    )
    return loop, consumer, producer, stop


def commits(consumer: FakeConsumer) -> tuple[int | None, int | None]:
    return consumer.committed(TP0), consumer.committed(TP1)


def consumed(loop: ConsumeLoop, outcome: str) -> float:
    return count(loop.metrics, "events_consumed", topic="erp.exports", outcome=outcome)


async def test_an_undecodable_record_is_dead_lettered_counted_once_and_committed() -> None:
    handler = Recorder()
    records = [FakeRecord(BAD, key=b"acme-builders:commitment:sc-1"), export_record(1, "sc-2")]
    loop, consumer, producer, stop = make_loop(records, handler, concurrency=4)
    await run_until(loop, stop, lambda: consumer.committed(TP0) == 2)
    [dead] = producer.on("erp.dead-letters")
    assert dead.payload.stage == "decode" and dead.payload.source.offset == 0
    assert handler.calls == [(0, 1)]
    assert consumed(loop, "refused") == 1 and consumed(loop, "processed") == 1
    assert count(loop.metrics, "events_refused", stage="decode") == 1
    assert count(loop.metrics, "events_produced", topic="erp.dead-letters") == 1


async def test_a_dead_letter_the_broker_did_not_take_is_retried_and_holds_the_partition() -> None:
    handler = Recorder()
    records = [FakeRecord(BAD, key=b"a"), export_record(1, "sc-2")]
    loop, consumer, producer, stop = make_loop(
        records, handler, producer=FakeProducer(failures=3), concurrency=4
    )
    await run_until(loop, stop, lambda: consumer.committed(TP0) == 2)
    assert len(producer.on("erp.dead-letters")) == 1 and handler.calls == [(0, 1)]
    assert count(loop.metrics, "events_refused", stage="decode") == 1
    assert consumed(loop, "refused") == 1


async def test_a_retry_holds_the_rest_of_its_partition_and_is_handed_over_again() -> None:
    tries = 0

    async def answer(record: Record) -> Outcome:
        nonlocal tries
        if (record.partition, record.offset) == (0, 0):
            tries += 1
            return Outcome.RETRY if tries <= 3 else Outcome.PROCESSED
        return Outcome.PROCESSED

    handler = Recorder(answer)
    records = [
        export_record(0, "a"),
        export_record(1, "b"),
        export_record(2, "c"),
        export_record(0, "d", partition=1),
    ]
    loop, consumer, _, stop = make_loop(records, handler, concurrency=4)
    await run_until(loop, stop, lambda: consumer.committed(TP0) == 3)
    assert [offset for p, offset in handler.calls if p == 0] == [0, 0, 0, 0, 1, 2]
    assert consumer.committed(TP1) == 1
    assert consumed(loop, "processed") == 4  # each record once, however often it was tried


async def test_a_record_still_retrying_when_the_loop_stops_is_never_committed_past() -> None:
    async def answer(record: Record) -> Outcome:
        return Outcome.RETRY if (record.partition, record.offset) == (0, 0) else Outcome.PROCESSED

    handler = Recorder(answer)
    records = [export_record(0, "a"), export_record(1, "b"), export_record(0, "d", partition=1)]
    loop, consumer, _, stop = make_loop(records, handler, concurrency=4)
    await run_until(
        loop, stop, lambda: handler.calls.count((0, 0)) >= 5 and (1, 0) in handler.calls
    )
    assert (0, 1) not in handler.calls  # it waits behind the held record
    assert consumer.highest_commit(TP0) <= 0 and consumer.committed(TP1) == 1
    assert consumed(loop, "processed") == 1


async def test_retries_back_off_doubling_up_to_the_cap() -> None:
    times: list[float] = []

    async def answer(record: Record) -> Outcome:
        times.append(time.monotonic())
        return Outcome.RETRY if len(times) <= 8 else Outcome.PROCESSED

    loop, consumer, _, stop = make_loop(
        [export_record(0, "a")], Recorder(answer), retry_base_s=0.01, retry_max_s=0.02
    )
    await run_until(loop, stop, lambda: consumer.committed(TP0) == 1)
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert gaps[0] >= 0.01 and all(gap >= 0.02 for gap in gaps[1:])
    assert max(gaps) < 0.5  # doubling without the cap would reach 1.28 s


async def test_a_record_in_flight_is_never_committed_past() -> None:
    gate, finished = asyncio.Event(), set()

    async def answer(record: Record) -> Outcome:
        if record.offset == 0:
            await gate.wait()
        finished.add(record.offset)
        return Outcome.PROCESSED

    records = [export_record(0, "a"), export_record(1, "b"), export_record(2, "c")]
    loop, consumer, _, stop = make_loop(records, Recorder(answer), concurrency=4)
    task = asyncio.create_task(loop.run())
    await until(lambda: finished == {1, 2})
    await loop.commit()
    assert consumer.highest_commit(TP0) <= 0
    gate.set()
    await until(lambda: consumer.committed(TP0) == 3)
    stop.set()
    await task


async def test_records_of_one_key_are_handled_one_at_a_time_in_order_under_concurrency() -> None:
    rng = random.Random(7)
    records = [
        export_record(offset, f"k{partition}-{rng.randrange(4)}", partition=partition)
        for partition in (0, 1)
        for offset in range(30)
    ]
    active: set[bytes | None] = set()
    order: dict[bytes | None, list[int]] = {}
    most = 0

    async def answer(record: Record) -> Outcome:
        nonlocal most
        assert record.key not in active, "two records of one key at once"
        active.add(record.key)
        most = max(most, len(active))
        await asyncio.sleep(rng.uniform(0, 0.003))
        order.setdefault(record.key, []).append(record.offset)
        active.discard(record.key)
        return Outcome.PROCESSED

    loop, consumer, _, stop = make_loop(records, Recorder(answer), concurrency=8)
    await run_until(loop, stop, lambda: commits(consumer) == (30, 30))
    expected: dict[bytes | None, list[int]] = {}
    for record in records:
        expected.setdefault(record.key, []).append(record.offset)
    assert order == expected
    assert most > 1  # different keys did run at once


async def test_a_handler_error_dead_letters_that_record_and_the_worker_goes_on() -> None:
    async def answer(record: Record) -> Outcome:
        if record.offset == 0:
            raise ValueError("a value the handler cannot use")
        return Outcome.PROCESSED

    handler = Recorder(answer)
    records = [export_record(0, "a"), export_record(1, "b"), export_record(2, "a")]
    loop, consumer, producer, stop = make_loop(records, handler, concurrency=4)
    await run_until(loop, stop, lambda: commits(consumer) == (3, None))
    (dead,) = producer.on("erp.dead-letters")
    assert (dead.payload.stage.value, dead.payload.source.offset) == ("business_rule", 0)
    assert "ValueError: a value the handler cannot use" in dead.payload.error
    assert dead.payload.refused_event_id is not None  # the decoded event is named
    assert sorted(handler.calls) == [(0, 0), (0, 1), (0, 2)]
    assert consumed(loop, "refused") == 1 and consumed(loop, "processed") == 2


async def test_an_outage_raised_by_a_handler_is_retried_never_dead_lettered() -> None:
    from aiokafka.errors import KafkaConnectionError

    async def answer(record: Record) -> Outcome:
        if len(handler.calls) < 3:
            raise KafkaConnectionError("broker down")
        return Outcome.PROCESSED

    handler = Recorder(answer)
    loop, consumer, producer, stop = make_loop([export_record(0, "a")], handler)
    await run_until(loop, stop, lambda: commits(consumer) == (1, None))
    assert handler.calls == [(0, 0)] * 3
    assert producer.on("erp.dead-letters") == []
    assert consumed(loop, "processed") == 1 and consumed(loop, "refused") == 0


async def test_a_batch_handler_error_dead_letters_only_the_record_it_fails_on() -> None:
    batches: list[list[int]] = []

    async def write(batch: Sequence[Consumed[Any]]) -> Outcome:
        batches.append([c.record.offset for c in batch])
        if any(c.record.offset == 1 for c in batch):
            raise ValueError("text fields cannot contain NUL")
        return Outcome.PROCESSED

    records = [export_record(0, "a"), export_record(1, "b"), export_record(2, "c")]
    loop, consumer, producer, stop = make_loop(records, handle_batch=write)
    await run_until(loop, stop, lambda: commits(consumer) == (3, None))
    assert batches == [[0, 1, 2], [0], [1], [2]]
    (dead,) = producer.on("erp.dead-letters")
    assert dead.payload.source.offset == 1 and "NUL" in dead.payload.error
    assert consumed(loop, "processed") == 2 and consumed(loop, "refused") == 1


async def test_a_batch_is_handed_over_again_after_a_retry_and_counted_once() -> None:
    batches: list[list[tuple[int, int]]] = []

    async def write(batch: Sequence[Consumed[Any]]) -> Outcome:
        batches.append([(c.record.partition, c.record.offset) for c in batch])
        return Outcome.RETRY if len(batches) == 1 else Outcome.PROCESSED

    records = [
        export_record(0, "a"),
        FakeRecord(BAD, offset=1, key=b"b"),
        export_record(2, "c"),
        export_record(0, "d", partition=1),
    ]
    loop, consumer, producer, stop = make_loop(records, handle_batch=write)
    await run_until(loop, stop, lambda: commits(consumer) == (3, 1))
    assert batches == [[(0, 0), (0, 2), (1, 0)]] * 2
    assert len(producer.on("erp.dead-letters")) == 1
    assert consumed(loop, "processed") == 3 and consumed(loop, "refused") == 1


async def test_a_batch_holds_at_most_max_batch_records_in_offset_order() -> None:
    batches: list[list[int]] = []

    async def write(batch: Sequence[Consumed[Any]]) -> Outcome:
        batches.append([c.record.offset for c in batch])
        return Outcome.PROCESSED

    records = [export_record(n, f"k{n % 3}") for n in range(7)]
    loop, consumer, _, stop = make_loop(records, handle_batch=write, max_batch=3)
    await run_until(loop, stop, lambda: commits(consumer) == (7, None))
    assert batches == [[0, 1, 2], [3, 4, 5], [6]]


async def test_a_rebalance_cancels_waiting_work_and_commits_what_finished() -> None:
    gate = asyncio.Event()

    async def answer(record: Record) -> Outcome:
        if record.partition == 0:
            await gate.wait()
        return Outcome.PROCESSED

    handler = Recorder(answer)
    records = [export_record(0, "a"), export_record(0, "d", partition=1)]
    loop, consumer, _, stop = make_loop(records, handler, concurrency=4, revoke_grace_s=0)
    task = asyncio.create_task(loop.run())
    await until(lambda: len(handler.calls) == 2)
    await loop.revoke({TP0, TP1})
    assert consumer.committed(TP1) == 1 and consumer.highest_commit(TP0) <= 0
    stop.set()
    await task


async def test_a_rebalance_lets_a_record_being_handled_finish_within_the_grace() -> None:
    async def answer(record: Record) -> Outcome:
        await asyncio.sleep(0.05)
        return Outcome.PROCESSED

    handler = Recorder(answer)
    loop, consumer, _, stop = make_loop([export_record(0, "a")], handler, revoke_grace_s=5)
    task = asyncio.create_task(loop.run())
    await until(lambda: len(handler.calls) == 1)
    await loop.revoke({TP0})
    assert consumer.committed(TP0) == 1
    stop.set()
    await task


async def test_a_batch_cut_short_by_a_rebalance_is_read_again_where_its_partitions_stay() -> None:
    async def write(batch: Sequence[Consumed[Any]]) -> Outcome:
        return Outcome.RETRY  # the database is down: the batch backs off, nothing is busy

    records = [export_record(0, "a"), export_record(0, "d", partition=1)]
    loop, consumer, _, stop = make_loop(records, handle_batch=write, retry_base_s=5, retry_max_s=5)
    task = asyncio.create_task(loop.run())
    await until(lambda: not consumer.queue)
    await asyncio.sleep(0.01)
    await loop.revoke({TP0})
    assert consumer.seeks == [(TP1, 0)]
    assert consumer.highest_commit(TP0) <= 0 and consumer.highest_commit(TP1) <= 0
    stop.set()
    await task


async def test_ordered_by_partition_a_retry_holds_only_its_partition_and_one_slot() -> None:
    """Records of one partition one at a time in offset order, whatever their keys; a record
    retried for good holds its partition (never committed past) while the others, fetched
    after it, are handled: the records queued behind it take no slot of theirs."""
    active: set[int] = set()
    order: dict[int, list[int]] = {}

    async def answer(record: Record) -> Outcome:
        if (record.partition, record.offset) == (0, 0):
            return Outcome.RETRY
        assert record.partition not in active, "two records of one partition at once"
        active.add(record.partition)
        await asyncio.sleep(0.001)
        order.setdefault(record.partition, []).append(record.offset)
        active.discard(record.partition)
        return Outcome.PROCESSED

    records = [export_record(offset, f"p0-{offset}") for offset in range(6)]
    records += [
        export_record(offset, f"k{offset % 3}", partition=partition)
        for partition in (1, 2)
        for offset in range(10)
    ]
    loop, consumer, _, stop = make_loop(
        records, Recorder(answer), concurrency=2, order=Order.PARTITION
    )
    tp2 = TopicPartition("erp.exports", 2)
    await run_until(
        loop, stop, lambda: consumer.committed(TP1) == 10 and consumer.committed(tp2) == 10
    )
    assert order == {1: list(range(10)), 2: list(range(10))}
    assert consumer.highest_commit(TP0) <= 0


async def test_with_no_room_the_loop_still_polls_with_its_partitions_paused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(loop_module, "_KEEP_POLLING_S", 0.01)
    gate = asyncio.Event()

    async def answer(record: Record) -> Outcome:
        await gate.wait()
        return Outcome.PROCESSED

    handler = Recorder(answer)
    records = [export_record(0, "a"), export_record(1, "b")]
    loop, consumer, _, stop = make_loop(records, handler, concurrency=1)
    task = asyncio.create_task(loop.run())
    await until(lambda: consumer.paused_polls >= 2)  # the group keeps seeing us alive
    assert handler.calls == [(0, 0)] and len(consumer.queue) == 1  # nothing more was taken
    gate.set()
    await until(lambda: consumer.committed(TP0) == 2)
    stop.set()
    await task


def test_a_failed_batch_is_described_by_every_partition_s_offsets() -> None:
    from consumers.worker.units import Unit
    from topics.record import Record

    records = [(p, Record("erp.status", p, o, None, b"")) for p, o in [(0, 3), (4, 7), (0, 5)]]
    assert Unit(records).describe() == (
        "a batch of 3 records (erp.status/0@3..5, erp.status/4@7..7)"
    )
    assert Unit(records[:1]).describe() == "erp.status/0@3"


async def test_a_record_a_batch_handler_retries_holds_only_its_key() -> None:
    """Per-record outcomes: a RETRY goes on alone behind its key; the rest of its batch is
    finished, later fetches go on, and offsets never pass the record being retried."""
    batches: list[list[int]] = []
    alone: list[int] = []
    waiting = asyncio.Event()  # set once the record `c` (a later fetch) was handled

    def item(c: Consumed[Any]) -> str:
        return (c.record.key or b"").decode().rsplit(":", 1)[-1]

    async def write(batch: Sequence[Consumed[Any]]) -> list[Outcome]:
        batches.append([c.record.offset for c in batch])
        if any(item(c) == "c" for c in batch):
            waiting.set()
        return [Outcome.RETRY if item(c) == "a" else Outcome.PROCESSED for c in batch]

    async def one(event: Any, record: Record) -> Outcome:
        alone.append(record.offset)
        assert consumer.committed(TP0) in (None, 0)  # never past the record being retried
        return Outcome.PROCESSED if waiting.is_set() else Outcome.RETRY

    records = [
        export_record(0, "a"),
        export_record(1, "b"),
        export_record(2, "a"),
        export_record(3, "c"),
    ]
    loop, consumer, _, stop = make_loop(
        records, one, handle_batch=write, max_batch=2, concurrency=4, retry_base_s=0.001
    )
    await run_until(loop, stop, lambda: commits(consumer) == (4, None))
    # `a`@0 was retried alone while the next fetch went on; `a`@2 never joined that fetch's
    # batch (its key was waiting) and came after `a`@0
    assert batches == [[0, 1], [3]]
    assert alone[-2:] == [0, 2] and set(alone) == {0, 2}
    assert consumed(loop, "processed") == 4
