"""The export worker: `ExportRequested` into the ERP exactly once, retried, or Failed to Export.

The exporter is the handler of the consume loop (`consumers.worker.loop`), which reads
erp.exports with `EXPORTER_CONCURRENCY` records in flight, records of one item (one key) in
order, dead-letters what cannot be decoded and commits each partition only up to the lowest
record not finished. A transient ERP error is retried *in process*, per item, with exponential
backoff and jitter: a slow or failing item sleeps in its own task, so the items behind it keep
flowing, and its partition's offset simply stays behind it. A retry topic was not used: it would
let later events of the same item overtake the one being retried, and it adds a second
produce-then-commit hop to get right; the price of in-process retries is that a crash restarts
the count of tries, which the idempotent ledger makes harmless.

Per record: ERP write + ledger row in one transaction (`ErpPort.export`), then the result
events, then (later, in order) the offset. A redelivery finds the ledger row and re-emits the
same result with the same event ids. An error publishing the results stops the worker (the
offset stays put and a restart redelivers); a rebalance cancels exports of revoked partitions
at once, which the transaction and the ledger make harmless.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from collections.abc import Callable

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
from consumers.worker.subscriber import Outcome, Subscriber
from pipeline.kafka import make_producer, publish
from pipeline.metrics import Metrics
from pipeline.settings import Settings
from topics import Envelope, TopicSpec
from topics.events import ExportRequested
from topics.payloads import KafkaSource
from topics.record import Record
from topics.specs import EXPORT_RESULTS, EXPORTS, FAILED_TO_EXPORT, NOTIFICATIONS

log = logging.getLogger(__name__)

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
        """How the consume loop runs it: concurrent items, revoked exports cancelled at once."""
        return Subscriber(
            EXPORTS,
            GROUP,
            handle=self.handle,
            concurrency=self._settings.exporter_concurrency,
            retry_base_s=self._settings.exporter_retry_base_s,
            retry_max_s=self._settings.exporter_retry_max_s,
            revoke_grace_s=0.0,
        )

    async def handle(self, request: ExportRequested, record: Record) -> Outcome:
        """Export one accepted item (retrying transient errors), then publish the results."""
        source = record.source()
        outcome, tries, error_class = await self._export(request, source)
        if outcome.exported:
            await self._send(EXPORT_RESULTS, events.item_exported(request, outcome))
            return Outcome.PROCESSED
        headers = events.dead_letter_headers(outcome, source, error_class=error_class, tries=tries)
        notices = events.failure_notices(request, outcome)
        for role in notices.unaddressable:
            log.warning(
                "export %s: no failure notice for the %s, whose address cannot be mailed",
                request.payload.export_id,
                role,
            )
            self.metrics.notifications.labels("ExportFailureNotice", "unaddressable").inc()
        await asyncio.gather(
            self._send(EXPORT_RESULTS, events.attempt_failed(request, outcome)),
            self._send(FAILED_TO_EXPORT, events.export_failed(request, outcome, source), headers),
            *(self._send(NOTIFICATIONS, n) for n in notices.notices),
        )
        return Outcome.PROCESSED

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
        self, spec: TopicSpec, event: Envelope, headers: list[tuple[str, bytes]] | None = None
    ) -> None:
        await publish(
            self._producer, self._settings, spec, event, headers=headers or (), metrics=self.metrics
        )


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
