"""The export consumer: `ExportRequested` into the ERP exactly once, retried, or Failed to Export.

Each record becomes a task; records of one item (one key) run in order, different items run
concurrently up to `EXPORTER_CONCURRENCY`. A transient ERP error is retried *in process*, per
item, with exponential backoff and jitter: a slow or failing item sleeps in its own task, so the
items behind it keep flowing, and its partition's offset simply stays behind it (an offset is
committed only up to the lowest record not yet finished). A retry topic was not used: it would
let later events of the same item overtake the one being retried, and it adds a second
produce-then-commit hop to get right; the price of in-process retries is that a crash restarts
the count of tries, which the idempotent ledger makes harmless.

Per record: ERP write + ledger row in one transaction (`ErpPort.export`), then the result
events, then (later, in order) the offset. A redelivery finds the ledger row and re-emits the
same result with the same event ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import random
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.errors import KafkaError

from consumers.export import events as events
from consumers.export.port import (
    ErpError,
    ErpPort,
    ExportOutcome,
    PermanentErpError,
    TransientErpError,
)
from consumers.worker.backoff import backoff_delay
from consumers.worker.offsets import OffsetTracker
from consumers.worker.runtime import Runtime, run_worker
from pipeline.kafka import make_consumer, make_producer
from pipeline.metrics import Metrics
from pipeline.rules.refusals import refusal_for_contract_error
from pipeline.settings import Settings
from topics import ContractError, Envelope, TopicSpec, decode, encode, headers_for, key_of
from topics.events import ExportRequested
from topics.payloads import KafkaSource
from topics.record import Record
from topics.specs import DEAD_LETTERS, EXPORT_RESULTS, EXPORTS, FAILED_TO_EXPORT, NOTIFICATIONS

log = logging.getLogger(__name__)

GROUP = "erp-exporter"
_COMMIT_EVERY_S = 0.2
_DRAIN_GRACE_S = 5.0


def group_id(settings: Settings) -> str:
    """The consumer group, per deployment prefix."""
    return settings.group(GROUP)


class Exporter:
    """Consumes erp.exports with manual commits; see the module docstring for the guarantees."""

    def __init__(
        self,
        settings: Settings,
        erp: ErpPort,
        producer: AIOKafkaProducer,
        consumer: AIOKafkaConsumer,
        *,
        rand: Callable[[], float] = random.random,
        metrics: Metrics | None = None,
    ) -> None:
        self._settings, self._erp = settings, erp
        self.metrics = metrics or Metrics(process=False)
        self._producer, self._consumer, self._rand = producer, consumer, rand
        self._tracker = OffsetTracker()
        self._tasks: dict[asyncio.Task[None], tuple[Any, int]] = {}
        self._tails: dict[tuple[int, bytes | None], asyncio.Task[None]] = {}
        self._room = asyncio.Event()
        self._fatal: BaseException | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Export until `stop` is set; then finish (or give up) what is in flight and commit."""
        loop = asyncio.get_running_loop()
        last_commit = loop.time()
        try:
            while not stop.is_set():
                if self._fatal is not None:
                    raise self._fatal
                room = self._settings.exporter_concurrency - len(self._tasks)
                if room > 0:
                    batches = await self._consumer.getmany(timeout_ms=200, max_records=room)
                    for tp, records in batches.items():
                        for record in records:
                            self._start(tp, record)
                else:
                    self._room.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._room.wait(), 0.5)
                if loop.time() - last_commit >= _COMMIT_EVERY_S:
                    await self.commit()
                    last_commit = loop.time()
        finally:
            await self._drain(list(self._tasks), _DRAIN_GRACE_S)
            await self.commit()

    def _start(self, tp: Any, record: Any) -> None:
        tail_key = (tp.partition, record.key)
        task = asyncio.create_task(self._handle(record, self._tails.get(tail_key)))
        self._tracker.started(tp, record.offset)
        self._tasks[task] = (tp, record.offset)
        self._tails[tail_key] = task
        task.add_done_callback(functools.partial(self._done, tail_key))

    def _done(self, tail_key: tuple[int, bytes | None], task: asyncio.Task[None]) -> None:
        tp, offset = self._tasks.pop(task)
        if self._tails.get(tail_key) is task:
            del self._tails[tail_key]
        self._room.set()
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            # Not an ERP error (those are handled): the broker refused our results. Stop, so
            # the offset stays put and a restart redelivers.
            log.error("export task failed at %s/%s: %r", tp, offset, error)
            self._fatal = self._fatal or error
            return
        self._tracker.finished(tp, offset)

    async def commit(self) -> None:
        """Commit, per partition, up to the first record still in flight."""
        moves = self._tracker.committable()
        if not moves:
            return
        try:
            await self._consumer.commit(moves)
        except KafkaError as exc:  # a rebalance in progress: the next commit catches up
            log.warning("offset commit failed: %r", exc)
            return
        self._tracker.committed(moves)
        self.metrics.committed("erp-exporter")

    async def revoke(self, partitions: set[Any]) -> None:
        """Partitions leave in a rebalance: stop their exports, commit what finished."""
        await self._drain([t for t, (tp, _) in self._tasks.items() if tp in partitions], 0)
        await self.commit()
        self._tracker.forget(partitions)

    @staticmethod
    async def _drain(tasks: list[asyncio.Task[None]], grace_s: float) -> None:
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace_s) if grace_s else ((), set(tasks))
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _handle(self, record: Any, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        raw = Record.of(record)
        source = raw.source()
        try:
            request: ExportRequested = decode(record.value or b"", EXPORTS)
        except ContractError as exc:
            await self._send(DEAD_LETTERS, refusal_for_contract_error(raw, exc))
            self.metrics.events_consumed.labels(EXPORTS.name, "refused").inc()
            self.metrics.events_refused.labels(exc.stage).inc()
            return
        self.metrics.events_consumed.labels(EXPORTS.name, "processed").inc()
        outcome, tries, error_class = await self._export(request, source)
        if outcome.exported:
            await self._send(EXPORT_RESULTS, events.item_exported(request, outcome))
            return
        headers = events.dead_letter_headers(outcome, source, error_class=error_class, tries=tries)
        await asyncio.gather(
            self._send(EXPORT_RESULTS, events.attempt_failed(request, outcome)),
            self._send(FAILED_TO_EXPORT, events.export_failed(request, outcome, source), headers),
            *(self._send(NOTIFICATIONS, n) for n in events.failure_notices(request, outcome)),
        )

    async def _export(
        self, request: ExportRequested, source: KafkaSource
    ) -> tuple[ExportOutcome, int, str]:
        settings, tries = self._settings, 0
        while True:
            tries += 1
            try:
                with self.metrics.erp_call.time():
                    outcome = await asyncio.wait_for(
                        self._erp.export(request, source), settings.exporter_timeout_s
                    )
                self.metrics.export_attempts.labels(
                    "exported" if outcome.exported else "recorded_failure"
                ).inc()
                return outcome, tries, ""
            except PermanentErpError as exc:
                self._count_failure("permanent", exc)
                return await self._fail(request, source, exc), tries, type(exc).__name__
            except (TransientErpError, TimeoutError) as exc:
                self._count_failure("transient", exc)
                error = (
                    exc
                    if isinstance(exc, ErpError)
                    else TransientErpError(
                        "timeout", f"the ERP did not answer within {settings.exporter_timeout_s}s"
                    )
                )
                if tries >= settings.exporter_max_attempts:
                    final = TransientErpError(
                        error.code,
                        f"{error.message} (gave up after {tries} tries)",
                        response=error.response,
                    )
                    return await self._fail(request, source, final), tries, type(final).__name__
                delay = backoff_delay(
                    tries,
                    settings.exporter_retry_base_s,
                    settings.exporter_retry_max_s,
                    self._rand(),
                )
                log.warning(
                    "export %s try %d failed (%s); retrying in %.1fs",
                    request.payload.export_id,
                    tries,
                    error.code,
                    delay,
                )
                await asyncio.sleep(delay)

    async def _fail(
        self, request: ExportRequested, source: KafkaSource, error: ErpError
    ) -> ExportOutcome:
        try:
            return await asyncio.wait_for(
                self._erp.record_failure(request, source, error), self._settings.exporter_timeout_s
            )
        except (ErpError, TimeoutError):
            # The ERP cannot record it either (it is down): publish the failure anyway; a
            # redelivery before the next commit would simply try the export again.
            return ExportOutcome(
                export_id=request.payload.export_id,
                attempt=request.payload.attempt,
                exported=False,
                recorded_at=dt.datetime.now(dt.UTC),
                error_code=error.code,
                error_message=error.message,
            )

    def _count_failure(self, outcome: str, error: BaseException) -> None:
        self.metrics.export_attempts.labels(outcome).inc()
        self.metrics.export_failures.labels(type(error).__name__).inc()

    async def _send(
        self, spec: TopicSpec, event: Envelope, extra_headers: list[tuple[str, bytes]] | None = None
    ) -> None:
        await self._producer.send_and_wait(
            spec.full_name(self._settings.erp_topic_prefix),
            encode(event),
            key=key_of(event).encode("utf-8"),
            headers=headers_for(event) + (extra_headers or []),
        )
        self.metrics.events_produced.labels(spec.name).inc()


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, exporter: Exporter) -> None:
        self._exporter = exporter

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        await self._exporter.revoke(set(revoked))

    async def on_partitions_assigned(self, assigned: set[Any]) -> None:
        return None


async def serve(
    settings: Settings,
    stop: asyncio.Event,
    erp: ErpPort | None = None,
    runtime: Runtime | None = None,
) -> None:
    """Composition root: the ERP adapter, the clients, the exporter; runs until `stop` is set."""
    if erp is None:
        from consumers.export.spectrum.adapter import SpectrumErp

        erp = SpectrumErp(
            settings.require_erp_database_url(),
            max_connections=min(settings.exporter_concurrency, 8),
        )
    producer = make_producer(settings)
    consumer = make_consumer(settings, group_id=group_id(settings))
    exporter = Exporter(
        settings, erp, producer, consumer, metrics=runtime.metrics if runtime else None
    )
    if runtime is not None:
        runtime.watch_consumer(consumer, "erp-exporter")
        runtime.watch_database(settings.require_erp_database_url())
    consumer.subscribe(
        [EXPORTS.full_name(settings.erp_topic_prefix)], listener=_Rebalance(exporter)
    )
    await producer.start()
    try:
        await consumer.start()
        try:
            await exporter.run(stop)
        finally:
            await consumer.stop()
    finally:
        await producer.stop()
        await erp.close()


def run(settings: Settings) -> None:
    """Worker entry point (`erp-pipeline run exporter`): blocks until SIGTERM or SIGINT."""

    run_worker(settings, lambda runtime: serve(settings, runtime.stop, runtime=runtime))
