"""The export worker: `ExportRequested` into the ERP exactly once, retried, or Failed to Export.

The exporter is the batch handler of the consume loop (`consumers.worker.loop`), which reads
erp.exports, hands over what one fetch returned (up to `EXPORTER_BATCH_MAX` records) once
the previous batch is done,
dead-letters what cannot be decoded and commits each partition only up to the lowest record
not finished, after the handler returned.

Per batch: one ERP transaction (`ErpPort.export_batch`) in which each export's ERP write and
ledger row go together (a savepoint each: a failing export rolls back its own writes only),
then every result event sent without waiting for each and one producer flush, then (later,
in order) the offsets. An export the batch could not do (an ERP error), and the later exports
of its item, are then done one at a time as before batching: a transient ERP error is retried
*in process*, per item, with exponential backoff and jitter, items concurrently
(`EXPORTER_CONCURRENCY`); a permanent one is recorded in the ledger and published as a
failure. The next batch waits for them: a failing item delays its batch's offsets and the
next fetch, never the order of another item's exports. A retry topic was not used: it would
let later events of the same item overtake the one being retried, and it adds a second
produce-then-commit hop to get right; the price of in-process retries is that a crash restarts
the count of tries, which the idempotent ledger makes harmless.

A redelivery (a crash after the transaction, before the offsets) finds the ledger rows and
re-emits the same results with the same event ids. An error publishing the results is an
outage for the loop: the batch is handed over again, with the same effect. A rebalance
cancels a batch at once, which the transaction and the ledger make harmless.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaProducer

from consumers.export import events as events
from consumers.export.port import (
    ErpError,
    ErpPort,
    ExportOutcome,
    PermanentErpError,
    TransientErpError,
)
from consumers.worker.backoff import backoff_delay
from consumers.worker.loop import consume
from consumers.worker.runtime import Runtime, run_worker
from consumers.worker.subscriber import Consumed, Outcome, Subscriber, send
from pipeline.kafka import make_producer
from pipeline.metrics import Metrics
from pipeline.settings import Settings
from topics import Envelope, TopicSpec
from topics.events import ExportRequested
from topics.payloads import KafkaSource
from topics.record import Record
from topics.specs import EXPORT_RESULTS, EXPORTS, FAILED_TO_EXPORT, NOTIFICATIONS

log = logging.getLogger(__name__)

#: An event to publish: its topic, the event, extra headers.
Output = tuple[TopicSpec, Envelope, list[tuple[str, bytes]] | None]
#: A request a batch could not export, and the error of its try in the batch (None: not tried).
Alone = tuple[Consumed[ExportRequested], ErpError | None]

GROUP = "erp-exporter"


class Exporter:
    """The handler of erp.exports: the ERP port, the producer and the backoff between tries."""

    def __init__(
        self,
        settings: Settings,
        erp: ErpPort,
        producer: AIOKafkaProducer,
        *,
        rand: Callable[[], float] = random.random,
        metrics: Metrics | None = None,
    ) -> None:
        self._settings, self._erp = settings, erp
        self.metrics = metrics or Metrics(process=False)
        self._producer, self._rand = producer, rand

    def subscriber(self) -> Subscriber[ExportRequested]:
        """How the consume loop runs it: all of a fetch at once, revoked exports cancelled."""
        return Subscriber(
            EXPORTS,
            GROUP,
            handle_batch=self.handle_batch,
            max_batch=self._settings.exporter_batch_max,
            retry_base_s=self._settings.exporter_retry_base_s,
            retry_max_s=self._settings.exporter_retry_max_s,
            revoke_grace_s=0.0,
        )

    async def handle_batch(self, batch: Sequence[Consumed[ExportRequested]]) -> Outcome:
        """Export a fetched batch in one ERP transaction, publish every result, flush once.

        What the batch could not export (an ERP error, and the item's later exports behind
        it; or everything, when the transaction itself failed) is then exported one request at
        a time, as `handle` does, the batch's error (if it is the export's own, or transient)
        counting as its first try: items concurrently (`EXPORTER_CONCURRENCY`), each item's
        requests in order.
        Raises what publishing raises (a `KafkaError`: the loop retries the batch, and the
        ledger turns the repeat into the same results again).
        """
        requests = [(c.event, c.record.source()) for c in batch]
        results: list[ExportOutcome | ErpError | None]
        try:
            with self.metrics.erp_call.time():
                results = await asyncio.wait_for(
                    self._erp.export_batch(requests), self._settings.exporter_timeout_s
                )
        except (ErpError, TimeoutError) as exc:
            # The transaction failed as a whole: nothing was written. A transient error counts
            # as each export's first try; a permanent one (a commit refused) names no export,
            # so each is tried again alone, and only the one at fault fails.
            error = exc if isinstance(exc, ErpError) else self._timeout()
            log.warning("export batch of %d failed (%s); one at a time", len(batch), error.code)
            results = [error if error.retryable else None] * len(batch)
        outputs: list[Output] = []
        alone: dict[str, list[Alone]] = {}
        for consumed, (request, source), result in zip(batch, requests, results, strict=True):
            if isinstance(result, ExportOutcome):
                self._count_outcome(result)
                outputs += self._outputs(request, source, result, tries=1, error_class="")
            else:
                alone.setdefault(request.item_key, []).append((consumed, result))
        await self._publish(outputs)
        if alone:
            slots = asyncio.Semaphore(self._settings.exporter_concurrency)

            async def in_order(item: list[Alone]) -> None:
                async with slots:
                    for consumed, failed in item:
                        await self.handle(consumed.event, consumed.record, failed=failed)

            await asyncio.gather(*(in_order(item) for item in alone.values()))
        return Outcome.PROCESSED

    async def handle(
        self, request: ExportRequested, record: Record, *, failed: ErpError | None = None
    ) -> Outcome:
        """Export one accepted item (retrying transient errors), then publish the results.

        `failed`: the error of a try already made (in a batch), counted as the first.
        """
        source = record.source()
        outcome, tries, error_class = await self._export(request, source, failed)
        await self._publish(self._outputs(request, source, outcome, tries, error_class))
        return Outcome.PROCESSED

    def _outputs(
        self,
        request: ExportRequested,
        source: KafkaSource,
        outcome: ExportOutcome,
        tries: int,
        error_class: str,
    ) -> list[Output]:
        """The events an export's outcome is published as: its result, or its failure's."""
        if outcome.exported:
            return [(EXPORT_RESULTS, events.item_exported(request, outcome), None)]
        headers = events.dead_letter_headers(outcome, source, error_class=error_class, tries=tries)
        notices = events.failure_notices(request, outcome)
        for role in notices.unaddressable:
            log.warning(
                "export %s: no failure notice for the %s, whose address cannot be mailed",
                request.payload.export_id,
                role,
            )
            self.metrics.notifications.labels("ExportFailureNotice", "unaddressable").inc()
        return [
            (EXPORT_RESULTS, events.attempt_failed(request, outcome), None),
            (FAILED_TO_EXPORT, events.export_failed(request, outcome, source), headers),
            *((NOTIFICATIONS, n, None) for n in notices.notices),
        ]

    async def _export(
        self, request: ExportRequested, source: KafkaSource, failed: ErpError | None = None
    ) -> tuple[ExportOutcome, int, str]:
        settings, tries = self._settings, 0
        while True:
            tries += 1
            try:
                if failed is not None:  # the first try was made already
                    made, failed = failed, None
                    raise made
                with self.metrics.erp_call.time():
                    outcome = await asyncio.wait_for(
                        self._erp.export(request, source), settings.exporter_timeout_s
                    )
                self._count_outcome(outcome)
                return outcome, tries, ""
            except PermanentErpError as exc:
                self._count_failure("permanent", exc)
                return await self._fail(request, source, exc), tries, type(exc).__name__
            except (TransientErpError, TimeoutError) as exc:
                self._count_failure("transient", exc)
                error = exc if isinstance(exc, ErpError) else self._timeout()
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

    def _timeout(self) -> TransientErpError:
        seconds = self._settings.exporter_timeout_s
        return TransientErpError("timeout", f"the ERP did not answer within {seconds}s")

    def _count_outcome(self, outcome: ExportOutcome) -> None:
        self.metrics.export_attempts.labels(
            "exported" if outcome.exported else "recorded_failure"
        ).inc()

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

    async def _publish(self, outputs: list[Output]) -> None:
        """Send every event without waiting for each, flush once, then await every ack.

        Events of one item keep their order (one key, one partition, one producer). Raises
        the first send's error (a `KafkaError`) once all are settled.
        """
        if not outputs:
            return
        acks = [
            await send(self._producer, self._settings, spec, event, headers=headers or ())
            for spec, event, headers in outputs
        ]
        await self._producer.flush()
        results = await asyncio.gather(*acks, return_exceptions=True)
        for (spec, event, _), result in zip(outputs, results, strict=True):
            if isinstance(result, BaseException):
                raise result
            self.metrics.published(spec.name, event)


async def serve(runtime: Runtime, *, erp: ErpPort | None = None) -> None:
    """Composition root: the ERP adapter, the producer, the exporter; runs until stopped."""
    settings = runtime.settings
    name = "ERP_DATABASE_URL" if settings.erp_database_url is not None else "DATABASE_URL"
    runtime.watch_database(settings.require_erp_database_url(), name)
    if erp is None:
        from consumers.export.spectrum.adapter import SpectrumErp

        erp = SpectrumErp(
            settings.require_erp_database_url(),
            max_connections=min(settings.exporter_concurrency, 8),
        )
    producer = make_producer(settings)
    exporter = Exporter(settings, erp, producer, metrics=runtime.metrics)
    await consume(runtime, exporter.subscriber(), producer, close=[erp.close])


def run(settings: Settings) -> None:
    """Worker entry point (`erp-pipeline run exporter`): blocks until SIGTERM or SIGINT."""
    run_worker(settings, serve)
