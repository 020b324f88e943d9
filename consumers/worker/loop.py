"""The one consume loop of the aiokafka workers: fetch, decode or dead-letter, hand over, commit.

A worker is a `Subscriber` (its topic, group and handler); the loop does the rest, the same way
for every worker, so a fix to how input is handled reaches all of them at once:

- fetched records become units of work: one record each, records of one key (or, for a
  subscriber ordered by partition, of one partition) one after another, up to `concurrency`
  units (partitions) at a time; or, for a batch handler, all of a fetch (up to `max_batch`
  records) as one unit, one at a time; a record it answers RETRY for (a subscriber with a
  batch and a per-record handler) goes on as a unit of its own behind its key, and the next
  fetch comes while fewer than `concurrency` of those are in flight; a fetched record whose
  key has one waits behind it instead of joining the batch. A
  partition ordered as a whole is paused while it has a unit, so a record being retried
  holds its own partition and one slot, never the others;
- each record is decoded with the topic's spec; one that breaks the contract is dead-lettered
  (stage, reason, its bytes intact) and never reaches the handler;
- the handler's `Outcome` decides: RETRY holds the record, and every later record of its
  partition that has not started, and hands it over again after a backoff; others are final;
- offsets are committed per partition only up to the first record not finished
  (`OffsetTracker`): a record in flight, held or given up on is never committed past;
- a rebalance settles the revoked partitions' units and commits what finished; stopping
  drains the units for a grace period and commits what finished;
- a handler that raises because a service is down (`units.OUTAGES`: the broker, a database,
  a connection) is retried like a RETRY; anything else it raises is a data error: that one
  record is dead-lettered at stage business_rule with the error, and the worker goes on (a
  batch is handed over one record at a time to find it). Never is a data error an outage.

Counting, once per record, when its outcome is final (never for a retry, a cancelled or an
abandoned try): `events_consumed{topic, outcome}` with `refused` for a record the loop
dead-lettered, else the handler's outcome. `events_produced{topic}` and, for dead letters,
`events_refused{stage}` are counted by `pipeline.kafka.publish` when the broker has the event.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.errors import KafkaError

from consumers.worker.holds import Holds
from consumers.worker.offsets import OffsetTracker
from consumers.worker.runtime import Runtime
from consumers.worker.subscriber import Order, Subscriber
from consumers.worker.units import Runner, Unit, settle
from pipeline.kafka import make_consumer
from pipeline.metrics import Metrics
from pipeline.settings import Settings
from topics.record import Record

log = logging.getLogger(__name__)

_FETCH_MS = 200
_COMMIT_EVERY_S = 0.2
_ROOM_WAIT_S = 0.5
#: With no room for more records, poll anyway this often: aiokafka leaves the group when
#: `getmany` is not called within `max_poll_interval_ms`, and a long retry must not cost that.
_KEEP_POLLING_S = 30.0

Tail = tuple[Any, bytes | None]


class ConsumeLoop:
    """Runs one `Subscriber` on one consumer until `stop` is set (see the module docstring)."""

    def __init__(
        self,
        subscriber: Subscriber[Any],
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        settings: Settings,
        stop: asyncio.Event,
        metrics: Metrics | None = None,
        *,
        commit_every_s: float = _COMMIT_EVERY_S,
    ) -> None:
        self.sub, self.metrics = subscriber, metrics or Metrics(process=False)
        self._commit_every_s = commit_every_s
        self._consumer = consumer
        self._stop, self._stopping = stop, asyncio.Event()
        self._tracker, self._holds = OffsetTracker(), Holds()
        self._units: dict[asyncio.Task[None], Unit] = {}
        self._tails: dict[Tail, tuple[asyncio.Task[None], Unit]] = {}
        self._room = asyncio.Event()
        self._fatal: BaseException | None = None
        self._runner = Runner(
            subscriber,
            producer,
            settings,
            self.metrics,
            self._tracker,
            self._holds,
            self._stopping,
            lambda: self._fatal is not None,
            self._requeue,
        )
        self._batch: asyncio.Task[None] | None = None

    async def run(self) -> None:
        """Consume until `stop` is set or a unit of work fails unexpectedly (a bug: handlers'
        errors are dead-lettered or retried in `units`); then drain, commit, raise its error."""
        clock = asyncio.get_running_loop()
        last_commit = last_poll = clock.time()
        try:
            while not self._stop.is_set() and self._fatal is None:
                room: int | None = self.sub.concurrency - len(self._units)
                if self.sub.order is Order.PARTITION:  # a partition's queue takes one slot
                    room = self.sub.concurrency - len(self._tails)
                if self.sub.handle_batch is not None:  # one batch at a time, all of a fetch
                    busy = self._batch is not None or len(self._tails) >= self.sub.concurrency
                    room = 0 if busy else self.sub.max_batch
                if room is None or room > 0:
                    self.dispatch(
                        await self._consumer.getmany(timeout_ms=_FETCH_MS, max_records=room)
                    )
                    last_poll = clock.time()
                else:
                    self._room.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._room.wait(), _ROOM_WAIT_S)
                    if clock.time() - last_poll >= _KEEP_POLLING_S:
                        await self._poll_paused()
                        last_poll = clock.time()
                if clock.time() - last_commit >= self._commit_every_s:
                    await self.commit()
                    last_commit = clock.time()
        finally:
            self._stopping.set()
            self._holds.wake()
            await settle(list(self._units), self.sub.drain_grace_s)
            await self.commit()
        if self._fatal is not None:
            raise self._fatal

    def dispatch(self, fetched: Mapping[Any, Sequence[Any]]) -> None:
        """Turn fetched records (per partition, in offset order) into units of work."""
        if self.sub.handle_batch is not None:
            batch = []
            for tp, records in fetched.items():
                for raw in records:
                    record = Record.of(raw)
                    if (tp, record.key) in self._tails:  # its key waits on a record retried
                        self._requeue(tp, record)
                    else:
                        batch.append((tp, record))
            if batch:
                self._start(Unit(batch), None)
            return
        by_partition = self.sub.order is Order.PARTITION
        for tp, records in fetched.items():
            for raw in records:
                record = Record.of(raw)
                self._start(Unit([(tp, record)]), (tp, None if by_partition else record.key))
            if by_partition and records:
                # Nothing more of it until its last unit is done (`_done` resumes it): its
                # records wait in their units, not in the slots of other partitions.
                self._consumer.pause(tp)

    async def commit(self) -> None:
        """Commit, per partition, up to the first record not finished."""
        moves = self._tracker.committable()
        if not moves:
            return
        try:
            await self._consumer.commit(moves)
        except KafkaError as exc:  # a rebalance in progress: the next commit catches up
            log.warning("offset commit failed: %r", exc)
            return
        self._tracker.committed(moves)
        self.metrics.committed(self.sub.group)

    async def revoke(self, partitions: set[Any]) -> None:
        """Partitions leave in a rebalance: settle their units, commit what finished."""
        touched = {t: u for t, u in self._units.items() if u.partitions() & partitions}
        for task, unit in touched.items():
            if not unit.busy:  # waiting or backing off: nothing is half done
                task.cancel()
        await settle(list(touched), self.sub.revoke_grace_s)
        for unit in touched.values():
            for tp, offset in unit.firsts().items():
                if tp not in partitions:  # a batch also held records of a partition we keep
                    self._tracker.rewind(tp, offset)
                    self._consumer.seek(tp, offset)
        await self.commit()
        self._tracker.forget(partitions)
        self._holds.forget(partitions)

    def _requeue(self, tp: Any, record: Record) -> None:
        """A record of a batch goes on alone, behind the records of its key still in flight."""
        self._start(Unit([(tp, record)], alone=True), (tp, record.key))

    def _start(self, unit: Unit, tail: Tail | None) -> None:
        previous = self._tails.get(tail) if tail is not None else None
        for tp, record in unit.records:
            self._tracker.started(tp, record.offset)
        task = asyncio.create_task(self._runner.work(unit, previous))
        self._units[task] = unit
        if tail is not None:
            self._tails[tail] = (task, unit)
        elif self.sub.handle_batch is not None:
            self._batch = task
        task.add_done_callback(functools.partial(self._done, tail))

    def _done(self, tail: Tail | None, task: asyncio.Task[None]) -> None:
        unit = self._units.pop(task)
        if self._batch is task:
            self._batch = None
        if tail is not None and self._tails.get(tail, (None,))[0] is task:
            del self._tails[tail]
            tp = tail[0]
            if self.sub.order is Order.PARTITION and tp in self._consumer.assignment():
                self._consumer.resume(tp)
        self._room.set()
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("%s: work on %s failed: %r", self.sub.group, unit.describe(), error)
            self._fatal = self._fatal or error

    async def _poll_paused(self) -> None:
        """Call `getmany` with every partition paused: the group sees us alive, nothing comes.

        Partitions paused before (waiting on their units) stay paused.
        """
        assigned = set(self._consumer.assignment())
        running = assigned - set(self._consumer.paused())
        self._consumer.pause(*assigned)
        try:
            await self._consumer.getmany(timeout_ms=0)
        finally:
            self._consumer.resume(*running)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, loop: ConsumeLoop) -> None:
        self._loop = loop

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        await self._loop.revoke(set(revoked))

    async def on_partitions_assigned(self, assigned: set[Any]) -> None:
        return None


async def consume(
    runtime: Runtime,
    subscriber: Subscriber[Any],
    producer: AIOKafkaProducer,
    *,
    close: Sequence[Callable[[], Awaitable[object]]] = (),
) -> None:
    """Run `subscriber` on a consumer of its own until `runtime.stop` is set: a worker's life.

    `producer` is not started yet: its handler publishes with it too, so it is started first
    and stopped after the consumer. Then each of `close` (the worker's own ports: database
    pools, the ERP adapter) is awaited, whatever happened.
    """
    settings = runtime.settings
    consumer = make_consumer(settings, group_id=settings.group(subscriber.group))
    loop = ConsumeLoop(subscriber, consumer, producer, settings, runtime.stop, runtime.metrics)
    runtime.watch_consumer(consumer, subscriber.group)
    consumer.subscribe(
        [subscriber.spec.full_name(settings.erp_topic_prefix)], listener=_Rebalance(loop)
    )
    async with contextlib.AsyncExitStack() as started:  # unwound in reverse order
        for closing in close:
            started.push_async_callback(closing)
        await producer.start()
        started.push_async_callback(producer.stop)
        await consumer.start()
        started.push_async_callback(consumer.stop)
        await loop.run()
