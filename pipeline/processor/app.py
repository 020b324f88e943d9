"""The processor's composition root: the faust app, its table, agents and timers, wired.

- One agent reads erp.submissions, erp.decisions and erp.export-results (all keyed by item,
  co-partitioned with the `items` table) and hands each fetched batch to `step`: each record
  decoded and run through `pipeline.rules.engine.react` in memory, then the batch's item
  states and derived events stored (`store`), made durable with one flush, published with
  one more, and the partition checkpoints moved, before the next batch.
- A record on another partition than its key's murmur2 hash names (a producer with another
  partitioner) is re-published to erp.item-routes on that partition (`routing`); the same
  agent reads that topic and handles each copy as the record it stands for.
- Every input partition has a checkpoint in the same table: records below it are skipped as
  already applied, a gap or a stall makes the processor seek back (`healing`), to the
  checkpoint or to faust's committed offset when that is lower (`refetch_from`: faust commits
  only over offsets acknowledged one after another). The consumer group's committed offsets
  only say where fetching starts.
- Local table state (rocksdb) left by a worker that did not shut down cleanly, or that the
  broker's changelog does not back, is dropped at start and restored from the changelog
  (`local_state`).
- The directory is kept by every instance in a whole-topic replica rather than a GlobalTable:
  before anyone's right to act is judged (a decision, a retrieve, a held decision applied)
  the replica catches up with erp.directory's end, so a directory change published before is
  always applied first, and the verdict follows log order, never the event's timestamp.
- The daily summary timer (`summaries`) reads replicas of erp.status and erp.notifications.
- faust's consumer is built with `KAFKA_FETCH_MAX_WAIT_MS` as its fetch wait (`transport`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import faust
import faust.streams
from faust.types import TP

from pipeline.metrics import Metrics
from pipeline.processor.config import (
    APP_NAME,
    INPUT_TOPICS,
    ITEMS_TABLE,
    faust_config,
    table_options,
)
from pipeline.processor.healing import Healing
from pipeline.processor.observe import Observer
from pipeline.processor.ports import (
    Clock,
    Durable,
    Probe,
    Publish,
    Replica,
    ReplicaFactory,
    Reroute,
    Seek,
    Send,
    utc_now,
)
from pipeline.processor.probe import PartitionProbe
from pipeline.processor.publish import Publisher
from pipeline.processor.replicas import TopicReplica
from pipeline.processor.step import Input, Step
from pipeline.processor.store import ItemStore
from pipeline.processor.summaries import SummaryTimer, apply_notification
from pipeline.processor.transport import committed_offsets, use_fetch_wait
from pipeline.rules.directory import Directory
from pipeline.rules.keys import key_refusal
from pipeline.rules.refusals import refusal_for_contract_error
from pipeline.rules.summary import SummaryState
from pipeline.settings import Settings
from topics import ContractError
from topics.record import Record, decode_record
from topics.specs import DIRECTORY, NOTIFICATIONS, STATUS, SUBMISSIONS

log = logging.getLogger(__name__)


def _credentials(settings: Settings) -> dict[str, Any]:
    """TLS / SASL for faust's own clients, from the same settings as every aiokafka client."""
    kwargs = settings.kafka_client_kwargs()
    if settings.kafka_sasl_mechanism:
        return {
            "broker_credentials": faust.SASLCredentials(
                username=kwargs["sasl_plain_username"],
                password=kwargs["sasl_plain_password"],
                mechanism=settings.kafka_sasl_mechanism,
                ssl_context=kwargs.get("ssl_context"),
            )
        }
    if "ssl_context" in kwargs:
        return {"broker_credentials": faust.SSLCredentials(kwargs["ssl_context"])}
    return {}


@dataclass(eq=False)
class Processor:
    """The faust app and the parts its agents, tasks and timer run on."""

    settings: Settings
    app: Any
    step: Step
    directory: Directory
    replicas: list[Replica]
    probe: Probe
    publish: Publish
    ready: asyncio.Event
    summaries: SummaryTimer
    observer: Observer

    def wire(self) -> None:
        """Register the agents, tasks, timer and shutdown hook with the faust app."""
        app, settings = self.app, self.settings
        directory = app.topic(
            settings.topic(DIRECTORY.name),
            key_type=bytes,
            value_type=bytes,
            partitions=DIRECTORY.partitions,
            acks=True,
        )
        app.agent(directory, name="directory")(self._directory_agent)
        items = app.topic(
            *(settings.topic(s.name) for s in INPUT_TOPICS), key_type=bytes, value_type=bytes
        )
        app.agent(items, name="items", concurrency=1)(self._items_agent)
        app.task(self._start_replicas, on_leader=False)
        app.timer(settings.processor_summary_interval_s)(self.summaries.tick)
        app.task(self.observer.run, on_leader=False)
        app.on_before_shutdown.connect(self._stop_replicas)

    async def _directory_agent(self, stream: Any) -> None:
        async for event in stream.events():
            await self.directory_record(Record.of_message(event.message))

    async def directory_record(self, record: Record) -> None:
        """One record of erp.directory: dead-lettered when it breaks the contract or its key is
        not its event's. The directory replica alone applies the topic (it skips what this
        agent refuses: compaction keeps by key), so that the directory takes every entry's
        versions in log order from one reader.

        Counted in `events_consumed` like the records of the item topics, `refused` or
        `processed`.
        """
        try:
            decoded = decode_record(record, DIRECTORY)
        except ContractError as exc:
            await self.publish(refusal_for_contract_error(record, exc))
            outcome = "refused"
        else:
            wrong_key = key_refusal(DIRECTORY, record, decoded)
            if wrong_key is not None:
                await self.publish(wrong_key)
                outcome = "refused"
            else:
                outcome = "processed"
        self.step.metrics.events_consumed.labels(DIRECTORY.name, outcome).inc()

    async def _items_agent(self, stream: Any) -> None:
        settings = self.settings
        within_s = settings.processor_batch_within_ms / 1000
        async for events in stream.take_events(settings.processor_batch_max, within=within_s):
            await self.ready.wait()
            self.step.metrics.processor_batch_records.observe(len(events))
            await self.step.consume_batch(
                [Input(Record.of_message(e.message), e.message.headers, e) for e in events]
            )

    async def _start_replicas(self) -> None:
        for replica in self.replicas:
            await replica.start()
        for replica in self.replicas:
            await replica.sync(timeout_s=60.0)
        self.ready.set()

    async def _stop_replicas(self, *args: Any, **kwargs: Any) -> None:
        for replica in self.replicas:
            await replica.stop()
        await self.probe.stop()


def build_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    metrics: Metrics | None = None,
    table: MutableMapping[bytes, bytes] | None = None,
    directory: Directory | None = None,
    replica: ReplicaFactory | None = None,
    probe: Probe | None = None,
    publish: Publish | None = None,
    durable: Durable | None = None,
    seek: Seek | None = None,
    reroute: Reroute | None = None,
) -> Processor:
    """The composition root: the processor for `settings`, its side effects taken as ports.

    Production passes the settings alone. Tests pass fakes for any port (a dict as the items
    table, a `publish` that appends to a list, a probe that knows where records are...) and
    get the same wiring around them.
    """
    metrics = Metrics() if metrics is None else metrics
    clock = utc_now if clock is None else clock
    app = faust.App(settings.group(APP_NAME), **faust_config(settings), **_credentials(settings))
    use_fetch_wait(app, settings.kafka_fetch_max_wait_ms)
    if table is None:
        table = app.Table(
            ITEMS_TABLE,
            default=None,
            partitions=SUBMISSIONS.partitions,
            key_type=bytes,
            value_type=bytes,
            options=table_options(settings),
        )
    directory = Directory() if directory is None else directory
    replica = partial(TopicReplica, settings, metrics=metrics) if replica is None else replica
    probe = PartitionProbe(settings, metrics=metrics) if probe is None else probe
    # faust builds its producer and consumer on first access: look them up only when used
    publisher = Publisher(settings, metrics, lambda: app.producer)

    async def consumer_seek(tp: tuple[str, int], offset: int) -> None:
        # on the consumer's own thread: faust's `seek` moves aiokafka's fetcher from this
        # one, which raced a fetch in progress there (KeyError in `fetched_records`, and the
        # worker stopped); `seek_wait` hands the seek to that thread and waits for it
        consumer = app.consumer
        partition = TP(*tp)
        start = refetch_from(consumer, partition, offset)
        if start < offset:
            log.info(
                "%s[%s]: fetching again from the group's committed offset %s (records up to "
                "the checkpoint %s are skipped, so that the group's offset moves past them)",
                *tp,
                start,
                offset,
            )
        await consumer.seek_wait({partition: start})

    durable = publisher.durable if durable is None else durable
    seek = consumer_seek if seek is None else seek
    send: Send = (
        publisher.send_all
        if publish is None and reroute is None
        else _one_by_one(
            publisher.publish if publish is None else publish,
            publisher.reroute if reroute is None else reroute,
        )
    )
    publish = publisher.publish if publish is None else publish

    summaries = SummaryState()
    replicas = [
        replica(DIRECTORY, directory.apply),
        replica(STATUS, summaries.apply_status),
        replica(NOTIFICATIONS, partial(apply_notification, summaries)),
    ]
    ready = asyncio.Event()
    store = ItemStore(table)
    healing = Healing(app, settings, store, probe, seek, metrics, ready)
    step = Step(
        settings,
        store,
        healing,
        directory,
        replicas[0].sync,
        send,
        durable,
        metrics,
        event_scope,
    )
    processor = Processor(
        settings,
        app,
        step,
        directory,
        replicas,
        probe,
        publish,
        ready,
        SummaryTimer(summaries, directory, replicas, ready, clock, publish),
        Observer(app, settings, metrics, ready, healing.heal_stalls),
    )
    processor.wire()
    return processor


def refetch_from(consumer: Any, tp: TP, checkpoint: int) -> int:
    """Where to seek `tp` back to so that its records from `checkpoint` are fetched again:
    the checkpoint, or faust's committed offset of the partition when that is lower.

    faust commits a partition only over offsets acknowledged one after another from its own
    committed offset (`Consumer._new_offset`, and nothing below that offset counts). Records
    between that offset and the checkpoint that this instance never received (lost around a
    rebalance, the loss the seek repairs) would never be acknowledged: the group's offset
    would stay there as long as the partition stays assigned, though every record is applied.
    Fetched again from there, they are skipped as already applied and acknowledged.

    Should a faust release not show its committed offsets (`transport.committed_offsets`),
    the seek goes to the checkpoint.
    """
    offsets = committed_offsets(consumer)
    committed = None if offsets is None else offsets.get(tp)
    if isinstance(committed, int) and 0 <= committed < checkpoint:
        return committed
    return checkpoint


@contextlib.contextmanager
def event_scope(event: Any) -> Iterator[None]:
    """Make `event` faust's current event while table reads and writes are made for it.

    faust's table sends each write to the changelog partition of the event being processed,
    and the rocksdb store reads and writes that partition's files: with a batch of events
    from several partitions, each record's table access must name its own event. faust has
    `current_event()` to read it and sets it itself only for one event at a time; the same
    context variable is set here, for the duration of the block, and restored after.
    """
    if event is None:
        yield
        return
    token = faust.streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust.streams._current_event.reset(token)


def _one_by_one(publish: Publish, reroute: Reroute) -> Send:
    """A `Send` over one-record ports (the fakes tests pass): each awaited in turn."""

    async def send(events: Any, copies: Any) -> None:
        for event in events:
            await publish(event)
        for record, partition in copies:
            await reroute(record, partition)

    return send


__all__ = ["Processor", "build_app", "event_scope", "refetch_from"]
