"""The approval-queue stream processor: the faust app wiring the rules to topics and tables.

- One agent reads erp.submissions, erp.decisions and erp.export-results (all keyed by item,
  co-partitioned with the `items` table); each record is decoded with the project codec, run
  through `pipeline.rules.react`, its state stored in the table (changelog-backed, rocksdb or
  memory store) and its derived events published, each awaited, before the next record.
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
from collections.abc import Callable
from typing import Any

import faust

from pipeline.directory import Directory
from pipeline.metrics import Metrics
from pipeline.observability import HealthServer
from pipeline.processor_config import (
    APP_NAME,
    ITEM_TOPICS,
    ITEMS_TABLE,
    MAX_DEAD_LETTER_BYTES,
    ROUTES,
    faust_config,
    internal_topic_specs,
)
from pipeline.refusals import Record, refusal, refusal_for_contract_error
from pipeline.rules import react
from pipeline.runtime import TopicReplica
from pipeline.settings import Settings
from pipeline.state import Incoming, ItemState
from pipeline.summary import SummaryState, due_summaries
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
            settings.topic(APP_NAME), **faust_config(settings), **_credentials(settings)
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

    async def _observe(self) -> None:
        """Serve /metrics, /healthz, /readyz and sample the group's lag until shutdown."""
        server = HealthServer(self.metrics, self.settings.metrics_port, self._readiness)
        await server.start()
        try:
            while True:
                self._sample_lag()
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

    async def publish(self, event: Envelope) -> None:
        """Send one derived event to its topic and wait for the broker's ack."""
        spec = ROUTES[event.event_type]
        value = encode(event)
        if isinstance(event, EventRefused) and len(value) > MAX_DEAD_LETTER_BYTES:
            kept = event.payload.raw[: MAX_DEAD_LETTER_BYTES // 2]
            payload = event.payload.model_copy(
                update={
                    "raw": kept,
                    "error": f"{event.payload.error} (raw value truncated to {len(kept)} chars)",
                }
            )
            value = encode(event.model_copy(update={"payload": payload}))
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

    @staticmethod
    def _record(event: Any) -> Record:
        message = event.message
        return Record(
            message.topic,
            message.partition,
            message.offset,
            message.key,
            message.value,
            int(message.timestamp * 1000) if message.timestamp else 0,
        )

    async def _directory_agent(self, stream: Any) -> None:
        async for event in stream.events():
            record = self._record(event)
            try:
                decoded = decode(record.value or b"", DIRECTORY)
            except ContractError as exc:
                await self.publish(refusal_for_contract_error(record, exc))
                continue
            self.directory.apply(decoded)

    async def _items_agent(self, stream: Any) -> None:
        async for event in stream.events():
            await self.ready.wait()
            await self.handle(self._record(event))

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
        # Outputs first, state second: a crash in between redelivers the record, which then
        # republishes the same events (same ids, dropped downstream) instead of skipping them
        # as a duplicate. The one agent handles records one at a time, so no other event of
        # the item can slip in between.
        for derived in outcome.events:
            await self.publish(derived)
        if outcome.state is not None and not outcome.duplicate:
            self.items[key.encode()] = outcome.state.model_dump_json().encode()
        refused = any(isinstance(e, EventRefused) for e in outcome.events)
        result = "duplicate" if outcome.duplicate else "refused" if refused else "processed"
        self.metrics.events_consumed.labels(spec.name, result).inc()

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


def run_worker(processor: Processor, loglevel: str = "info") -> None:
    """Run the faust worker until SIGTERM/SIGINT."""
    worker = faust.Worker(processor.app, loglevel=loglevel.lower(), quiet=True)
    # faust's terminal spinner, kept at WARNING and above, sets the root logger to DEBUG so that
    # every log call spins it: each of aiokafka's per-request debug calls then builds a record
    # (~7 % of the processor's CPU). A worker has no terminal to spin for.
    worker.spinner = None
    worker.execute_from_commandline()


__all__ = ["Processor", "build_app", "internal_topic_specs", "run_worker"]
