"""The approval-queue stream processor: the faust app wiring the rules to topics and tables.

- One agent reads erp.submissions, erp.decisions and erp.export-results (all keyed by item,
  co-partitioned with the `items` table); each record is decoded with the project codec, run
  through `pipeline.rules.engine.react`, its state and derived events stored in the table
  (changelog-backed, rocksdb or memory store) and acknowledged, then the events published,
  each awaited, before the next record (`pipeline.processor.outbox`).
- Every input partition has a checkpoint in the same table (`checkpoints`): records
  below it are skipped as already applied, a record past it makes the processor seek back,
  and a watchdog re-seeks a partition whose records past the checkpoint stopped arriving.
  The consumer group's committed offsets only say where fetching starts.
- Local table state (rocksdb) left by a worker that did not shut down cleanly is dropped at
  start and restored from the changelog: it may hold writes that never reached the changelog.
- The directory is kept by every instance in a whole-topic replica rather than a GlobalTable:
  before a decision is authorized the replica catches up with erp.directory's end, so a
  directory change published before the decision is always applied first.
- The daily summary timer reads replicas of erp.status (what waits) and erp.notifications
  (summaries already sent, so none is sent twice across restarts); summaries have one id per
  approver and day, so two instances ticking together yield duplicates consumers drop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import shutil
import time
from collections.abc import Callable
from typing import Any

import faust
from faust.types import TP

from pipeline.metrics import Metrics
from pipeline.observability import HealthServer
from pipeline.processor import checkpoints, outbox
from pipeline.processor.config import (
    APP_NAME,
    ITEM_TOPICS,
    ITEMS_TABLE,
    MAX_DEAD_LETTER_BYTES,
    ROUTES,
    faust_config,
    internal_topic_specs,
    state_dir,
)
from pipeline.processor.replicas import PartitionProbe, TopicReplica
from pipeline.rules.directory import Directory
from pipeline.rules.engine import react
from pipeline.rules.refusals import refusal, refusal_for_contract_error
from pipeline.rules.state import Incoming, ItemState
from pipeline.rules.summary import SummaryState, due_summaries
from pipeline.settings import Settings
from topics import (
    ContractError,
    Envelope,
    TopicSpec,
    decode,
    encode,
    headers_for,
    key_of,
)
from topics.events import DailySummary, EventRefused
from topics.payloads import RefusalStage
from topics.record import Record
from topics.specs import (
    DECISIONS,
    DIRECTORY,
    NOTIFICATIONS,
    STATUS,
    SUBMISSIONS,
)

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
PUBLISH_ATTEMPTS = 6
#: Written into the processor's state directory by a clean shutdown, removed at start.
CLEAN_SHUTDOWN_MARK = "clean-shutdown"


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


class Processor:
    """The faust app with its agents, its table and the replicas every instance keeps."""

    def __init__(
        self, settings: Settings, clock: Clock | None = None, metrics: Metrics | None = None
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.clock: Clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.app = faust.App(
            settings.group(APP_NAME), **faust_config(settings), **_credentials(settings)
        )
        self.items = self.app.Table(
            ITEMS_TABLE,
            default=None,
            partitions=SUBMISSIONS.partitions,
            key_type=bytes,
            value_type=bytes,
        )
        self.directory = Directory()
        self.summaries = SummaryState()
        self.replicas = [
            TopicReplica(settings, DIRECTORY, self.directory.apply),
            TopicReplica(settings, STATUS, self._apply_status),
            TopicReplica(settings, NOTIFICATIONS, self._apply_notification),
        ]
        self.ready = asyncio.Event()
        self.probe = PartitionProbe(settings)
        self.reseeks = checkpoints.Reseeks()
        self._item_topics = {settings.topic(s.name): s for s in ITEM_TOPICS}
        self._started = time.monotonic()
        #: When a record of each input partition, and of any, last reached the agent.
        self._last_seen: dict[tuple[str, int], float] = {}
        self._last_any = self._started
        self._wire()

    def _topic(self, spec: TopicSpec) -> Any:
        return self.app.topic(
            self.settings.topic(spec.name),
            key_type=bytes,
            value_type=bytes,
            partitions=spec.partitions,
            acks=True,
        )

    def _wire(self) -> None:
        app = self.app
        app.agent(self._topic(DIRECTORY), name="directory")(self._directory_agent)
        items = self.app.topic(
            *(self.settings.topic(s.name) for s in ITEM_TOPICS), key_type=bytes, value_type=bytes
        )
        app.agent(items, name="items", concurrency=1)(self._items_agent)
        app.task(self._start_replicas, on_leader=False)
        app.timer(self.settings.processor_summary_interval_s)(self._summary_tick)
        app.task(self._observe, on_leader=False)
        app.on_before_shutdown.connect(self._stop_replicas)

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

    async def _observe(self) -> None:
        """Serve /metrics, /healthz, /readyz and sample the group's lag until shutdown."""
        server = HealthServer(self.metrics, self.settings.metrics_port, self._readiness)
        await server.start()
        try:
            while True:
                self._sample_lag()
                try:
                    await self._heal_stalls()
                except Exception:
                    log.exception("checking input partitions for stalls failed")
                await asyncio.sleep(self.settings.metrics_sample_interval_s)
        finally:
            await server.stop()

    def _sample_lag(self) -> None:
        """Lag of the assigned partitions from faust's own consumer: highwater - committed.

        Read from the running consumer rather than asked of the broker with the group's id:
        a second client naming the group can disturb the group on some brokers.
        """
        consumer: Any = self.app.consumer
        try:
            committed = consumer._committed_offset
            for tp in consumer.assignment():
                highwater = consumer.highwater(tp)
                if highwater is None:
                    continue
                done = committed.get(tp) or 0
                self.metrics.consumer_lag.labels(APP_NAME, tp.topic, str(tp.partition)).set(
                    max(0, highwater - done)
                )
        except (AttributeError, KeyError) as exc:  # another faust layout: no lag, no crash
            log.debug("lag sample failed: %r", exc)

    async def _readiness(self) -> str | None:
        if not self.ready.is_set():
            return "directory, status and notification replicas not caught up yet"
        if self.app.rebalancing:
            return "rebalancing: partitions being assigned, tables recovering"
        if not self.app.consumer.assignment():
            return "no partitions assigned yet"
        return None

    def _apply_status(self, event: Any) -> None:
        self.summaries.apply_status(event)

    def _apply_notification(self, event: Any) -> None:
        if isinstance(event, DailySummary):
            self.summaries.apply_summary(event)

    @staticmethod
    def _bounded(event: Envelope) -> Envelope:
        """A dead letter's copy of an oversized value truncated, so that it stays decodable."""
        if not isinstance(event, EventRefused) or len(encode(event)) <= MAX_DEAD_LETTER_BYTES:
            return event
        kept = event.payload.raw[: MAX_DEAD_LETTER_BYTES // 2]
        payload = event.payload.model_copy(
            update={
                "raw": kept,
                "error": f"{event.payload.error} (raw value truncated to {len(kept)} chars)",
            }
        )
        return event.model_copy(update={"payload": payload})

    async def publish(self, event: Envelope) -> None:
        """Send one derived event to its topic and wait for the broker's ack."""
        spec = ROUTES[event.event_type]
        value = encode(self._bounded(event))
        for attempt in range(PUBLISH_ATTEMPTS):
            try:
                await self.app.producer.send_and_wait(
                    self.settings.topic(spec.name),
                    key_of(event).encode(),
                    value,
                    None,
                    None,
                    headers_for(event),
                )
                self.metrics.events_produced.labels(spec.name).inc()
                if isinstance(event, EventRefused):
                    self.metrics.events_refused.labels(event.payload.stage.value).inc()
                return
            except Exception as exc:
                if attempt + 1 == PUBLISH_ATTEMPTS:
                    raise
                log.warning("publishing %s failed (%s); retrying", event.event_type, exc)
                await asyncio.sleep(0.5 * 2**attempt)

    async def _directory_agent(self, stream: Any) -> None:
        async for event in stream.events():
            record = Record.of_message(event.message)
            try:
                decoded = decode(record.value or b"", DIRECTORY)
            except ContractError as exc:
                await self.publish(refusal_for_contract_error(record, exc))
                continue
            self.directory.apply(decoded)

    async def _items_agent(self, stream: Any) -> None:
        async for event in stream.events():
            await self.ready.wait()
            await self.consume(Record.of_message(event.message))

    async def consume(self, record: Record) -> None:
        """One record of an item topic: handled if its partition's checkpoint expects it."""
        if await self._next_in_line(record):
            await self.handle(record)
            self._advance(record)

    def _checkpoint(self, topic: str, partition: int) -> int | None:
        return checkpoints.decode(self.items.get(checkpoints.key(topic, partition)))

    def _advance(self, record: Record) -> None:
        """Move the record's partition checkpoint past it (after its state was stored)."""
        self.items[checkpoints.key(record.topic, record.partition)] = checkpoints.encode(
            record.offset + 1
        )

    async def _next_in_line(self, record: Record) -> bool:
        """Whether `record` is the next one its partition's checkpoint expects.

        Records below the checkpoint were applied already. A record past it means records in
        between never reached this agent: unless the probe finds no record there (offsets a
        transaction marker or compaction left empty), the partition is sought back to the
        checkpoint and the record waits for its turn.
        """
        tp = (record.topic, record.partition)
        self._last_seen[tp] = self._last_any = time.monotonic()
        expected = self._checkpoint(*tp)
        if expected is None:
            expected = await self.probe.log_start(*tp)
        verdict = checkpoints.verdict(expected, record.offset)
        if verdict is checkpoints.Verdict.SKIP:
            self.metrics.events_consumed.labels(
                self._item_topics[record.topic].name, "duplicate"
            ).inc()
            return False
        if verdict is checkpoints.Verdict.APPLY:
            self.reseeks.done(tp)
            return True
        start = await self.probe.log_start(*tp)
        if expected < start:
            log.error(
                "%s[%s] offsets %s..%s were deleted by retention before they were applied",
                *tp,
                expected,
                start - 1,
            )
            expected = start
        first = await self.probe.first_offset(*tp, expected)
        if expected == record.offset or (first is not None and first >= record.offset):
            return True  # nothing was skipped: no record lies in between
        await self._seek_back(tp, expected, "gap")
        return False

    async def _seek_back(self, tp: tuple[str, int], offset: int, cause: str) -> None:
        """Seek an input partition back to its checkpoint, once per wait."""
        if not self.reseeks.due(tp, offset, time.monotonic()):
            return
        log.warning(
            "%s[%s]: records from offset %s were not applied (%s); seeking back", *tp, offset, cause
        )
        self.metrics.processor_reseeks.labels(self._item_topics[tp[0]].name, cause).inc()
        await self._seek(tp, offset)

    async def _seek(self, tp: tuple[str, int], offset: int) -> None:
        await self.app.consumer.seek(TP(*tp), offset)

    async def _heal_stalls(self) -> None:
        """Seek back any input partition with records past its checkpoint that stopped coming.

        Covers records lost at the tail of a partition, where no later record arrives to show
        the gap. A partition counts as stalled once the agent has had nothing at all to do for
        a while (so records merely queued behind a backlog do not count), or after a long
        wait regardless.
        """
        if not self.ready.is_set() or self.app.rebalancing:
            return
        consumer: Any = self.app.consumer
        now = time.monotonic()
        for tp in consumer.assignment():
            if tp.topic not in self._item_topics:
                continue
            key = (tp.topic, tp.partition)
            expected = self._checkpoint(*key)
            idle = now - self._last_seen.get(key, self._started)
            highwater = consumer.highwater(tp)
            if not checkpoints.stalled(expected, highwater, idle, now - self._last_any):
                continue
            self._last_seen[key] = now  # one look per stall period
            if expected is None:
                expected = await self.probe.log_start(*key)
            if await self.probe.first_offset(*key, expected) is not None:
                await self._seek_back(key, expected, "stall")

    async def handle(self, record: Record) -> None:
        """Decode, apply the rules, store the item's state, publish what they derived.

        Bad input is dead-lettered and never stops the agent; an unexpected error in the rules
        is dead-lettered at stage business_rule and logged.
        """
        spec = next(s for s in ITEM_TOPICS if self.settings.topic(s.name) == record.topic)
        try:
            decoded = decode(record.value or b"", spec)
        except ContractError as exc:
            await self.publish(refusal_for_contract_error(record, exc))
            self.metrics.events_consumed.labels(spec.name, "refused").inc()
            return
        if spec is DECISIONS:
            await self.replicas[0].sync()
        key = decoded.item_key
        await self._publish_outbox(key)
        try:
            stored = self.items.get(key.encode())
            state = ItemState.model_validate_json(stored) if stored else None
            poison = self.settings.processor_poison_item_id
            if poison and key.rpartition(":")[2] == poison:
                raise RuntimeError("PROCESSOR_POISON_ITEM_ID names this item (fault injection)")
            outcome = react(state, Incoming(decoded, record), self.directory)
        except Exception as exc:
            log.exception("rules failed on %s offset %s", record.topic, record.offset)
            self.metrics.events_consumed.labels(spec.name, "refused").inc()
            await self.publish(
                refusal(
                    record,
                    RefusalStage.BUSINESS_RULE,
                    f"unexpected error: {type(exc).__name__}: {exc}",
                    event=decoded,
                )
            )
            return
        if outcome.state is not None and not outcome.duplicate:
            # State first, made durable, then the outputs (see processor.outbox): no answer to
            # an output can reach any instance before the state that caused it can.
            events = [self._bounded(e) for e in outcome.events]
            if events:
                self.items[outbox.key(key)] = outbox.pack(events)
            self.items[key.encode()] = outcome.state.model_dump_json().encode()
            if events:
                await self._make_durable()
                await self._publish_outbox(key)
        else:
            for derived in outcome.events:
                await self.publish(derived)
        refused = any(isinstance(e, EventRefused) for e in outcome.events)
        result = "duplicate" if outcome.duplicate else "refused" if refused else "processed"
        self.metrics.events_consumed.labels(spec.name, result).inc()

    async def _publish_outbox(self, key: str) -> None:
        """Publish, in order, what the item's outbox holds, then empty it."""
        stored = self.items.get(outbox.key(key))
        if not stored:
            return
        for event in outbox.unpack(stored, ROUTES):
            await self.publish(event)
        del self.items[outbox.key(key)]

    async def _make_durable(self) -> None:
        """Wait until every table write so far is acknowledged on the changelog."""
        await self.app.producer.flush()

    async def _summary_tick(self) -> None:
        if not self.ready.is_set():
            return
        for replica in self.replicas:
            await replica.sync()
        for summary in due_summaries(self.summaries, self.directory, self.clock()):
            await self.publish(summary)
            self.summaries.apply_summary(summary)


def build_app(
    settings: Settings, *, clock: Clock | None = None, metrics: Metrics | None = None
) -> Processor:
    """The composition root: the processor for `settings` (and a clock, for tests)."""
    return Processor(settings, clock, metrics)


def drop_unclean_state(settings: Settings) -> bool:
    """Delete local table state unless the last worker using it shut down cleanly.

    The rocksdb store writes an item's state locally before its changelog record is sent; a
    worker killed in between leaves local state the changelog lacks, which would then differ
    from what any other instance restores. Without the clean-shutdown mark the state is
    dropped and restored from the changelog. Returns whether it was dropped.
    """
    directory = state_dir(settings)
    mark = directory / CLEAN_SHUTDOWN_MARK
    dropped = False
    if directory.is_dir() and not mark.exists() and any(directory.iterdir()):
        log.warning("%s: no clean shutdown recorded; restoring from the changelog", directory)
        shutil.rmtree(directory)
        dropped = True
    mark.unlink(missing_ok=True)
    return dropped


def run_worker(processor: Processor, loglevel: str = "info") -> None:
    """Run the faust worker until SIGTERM/SIGINT; a clean stop marks the local state sound."""
    drop_unclean_state(processor.settings)
    worker = faust.Worker(processor.app, loglevel=loglevel.lower(), quiet=True)
    # faust's terminal spinner, kept at WARNING and above, sets the root logger to DEBUG so that
    # every log call spins it: each of aiokafka's per-request debug calls then builds a record
    # (~7 % of the processor's CPU). A worker has no terminal to spin for.
    worker.spinner = None
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        if not exc.code:
            directory = state_dir(processor.settings)
            directory.mkdir(parents=True, exist_ok=True)
            (directory / CLEAN_SHUTDOWN_MARK).touch()
        raise


__all__ = [
    "Processor",
    "build_app",
    "drop_unclean_state",
    "internal_topic_specs",
    "run_worker",
    "state_dir",
]
