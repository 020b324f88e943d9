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
of its item, are answered RETRY to the loop, which hands each to `handle` alone, behind its
item's key, with its backoff: a transient error (the ERP unreachable, or a job or commitment
not exported yet) is tried again until `EXPORTER_MAX_ATTEMPTS`, a permanent one is recorded
in the ledger and published as a failure. Only that item waits: other items of the batch,
and the next fetches, go on (while fewer than `EXPORTER_CONCURRENCY` items wait), so the
export a dependent item waits for is never held back by it. Offsets never pass a waiting
record. A retry topic was not used: it would let later events of the same item overtake the
one being retried, and it adds a second produce-then-commit hop to get right; the price of
in-process retries is that a crash restarts the count of tries, which the idempotent ledger
makes harmless.

The ledger decides "exported or not": a final failure is published only once the ledger
holds it (when the ERP cannot be reached to record it, the export is retried: it may have
been committed), and an item re-sent under a new export id after an export the ledger shows
done gets that export's ERP reference (`ItemExported`), never a second write.

A redelivery (a crash after the transaction, before the offsets) finds the ledger rows and
re-emits the same results with the same event ids. An error publishing the results is an
outage for the loop: the batch is handed over again, with the same effect. A rebalance
cancels a batch at once, which the transaction and the ledger make harmless.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaProducer

from consumers.export import events as events
from consumers.export.catalogue import ErrorCode
from consumers.export.port import (
    ErpError,
    ErpPort,
    ExportOutcome,
    PermanentErpError,
    TransientErpError,
)
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


def _at(record: Record) -> tuple[str, int, int]:
    return (record.topic, record.partition, record.offset)


def error_class(error: BaseException) -> str:
    """The metrics' error class of a failed try: its catalogue code, or the catalogue's
    catch-all for its kind (`erp_refused` when permanent, else `erp_unavailable`)."""
    code = getattr(error, "code", None)
    if code in ErrorCode.__members__.values():
        return str(code)
    if isinstance(error, ErpError) and not error.retryable:
        return ErrorCode.ERP_REFUSED.value
    return ErrorCode.ERP_UNAVAILABLE.value


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
        #: Tries made so far per export being retried (a restart counts from 1 again).
        self._tries: dict[str, int] = {}
        #: The error of an export's try in its batch, by record: its first try.
        self._first: dict[tuple[str, int, int], ErpError] = {}

    def subscriber(self) -> Subscriber[ExportRequested]:
        """How the consume loop runs it: all of a fetch at once, then what failed alone, per
        item (`EXPORTER_CONCURRENCY` items at a time), revoked exports cancelled."""
        return Subscriber(
            EXPORTS,
            GROUP,
            handle=self.handle,
            handle_batch=self.handle_batch,
            max_batch=self._settings.exporter_batch_max,
            concurrency=self._settings.exporter_concurrency,
            retry_base_s=self._settings.exporter_retry_base_s,
            retry_max_s=self._settings.exporter_retry_max_s,
            revoke_grace_s=0.0,
        )

    async def handle_batch(self, batch: Sequence[Consumed[ExportRequested]]) -> list[Outcome]:
        """Export a fetched batch in one ERP transaction, publish every result, flush once.

        Returns one outcome per record: PROCESSED for an export the ERP answered (its result
        is published), RETRY for one it could not do (an ERP error, an item's later exports
        behind it, or all of them when the transaction itself failed): the loop hands each
        of those to `handle` alone, behind its item, and the batch's error counts as its
        first try. Raises what publishing raises (a `KafkaError`: the loop retries the batch,
        and the ledger turns the repeat into the same results again).
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
        outcomes: list[Outcome] = []
        for consumed, (request, source), result in zip(batch, requests, results, strict=True):
            if isinstance(result, ExportOutcome):
                self._count_outcome(result)
                outputs += self._outputs(request, source, result, tries=1, error_class="")
                outcomes.append(Outcome.PROCESSED)
                continue
            if result is not None:
                self._first[_at(consumed.record)] = result
            outcomes.append(Outcome.RETRY)
        await self._publish(outputs)
        return outcomes

    async def handle(self, request: ExportRequested, record: Record) -> Outcome:
        """One try of one export (`ErpPort.export`), then its results published.

        PROCESSED once the ledger has an answer (exported, or a failure recorded) and it is
        published; RETRY after a transient error while tries remain (`EXPORTER_MAX_ATTEMPTS`,
        counted per export in this process; the loop backs off, holding only this item), and
        while the ERP cannot record a final failure: the ledger decides, never a guess.
        """
        source = record.source()
        export_id = request.payload.export_id
        tries = self._tries.get(export_id, 0) + 1
        first = self._first.pop(_at(record), None)
        try:
            if first is not None:  # the try made in the batch
                raise first
            with self.metrics.erp_call.time():
                outcome = await asyncio.wait_for(
                    self._erp.export(request, source), self._settings.exporter_timeout_s
                )
            self._count_outcome(outcome)
            error_class = ""
        except PermanentErpError as exc:
            self._count_failure("permanent", exc)
            recorded = await self._fail(request, source, exc)
            if recorded is None:
                return self._again(export_id, tries)
            outcome, error_class = recorded, type(exc).__name__
        except (TransientErpError, TimeoutError) as exc:
            self._count_failure("transient", exc)
            error = exc if isinstance(exc, ErpError) else self._timeout()
            if tries < self._settings.exporter_max_attempts:
                log.warning(
                    "export %s try %d failed (%s); will retry", export_id, tries, error.code
                )
                return self._again(export_id, tries)
            final = TransientErpError(
                error.code,
                f"{error.message} (gave up after {tries} tries)",
                response=error.response,
            )
            recorded = await self._fail(request, source, final)
            if recorded is None:
                return self._again(export_id, tries)
            outcome, error_class = recorded, type(final).__name__
        await self._publish(self._outputs(request, source, outcome, tries, error_class))
        self._tries.pop(export_id, None)
        return Outcome.PROCESSED

    def _again(self, export_id: str, tries: int) -> Outcome:
        self._tries[export_id] = tries
        return Outcome.RETRY

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

    def _timeout(self) -> TransientErpError:
        seconds = self._settings.exporter_timeout_s
        return TransientErpError("timeout", f"the ERP did not answer within {seconds}s")

    def _count_outcome(self, outcome: ExportOutcome) -> None:
        self.metrics.export_attempts.labels(
            "exported" if outcome.exported else "recorded_failure"
        ).inc()

    async def _fail(
        self, request: ExportRequested, source: KafkaSource, error: ErpError
    ) -> ExportOutcome | None:
        """Record a final failure; the ledger's row (a success stands), or None when the ERP
        cannot be reached to record it: the export may have been committed meanwhile, so the
        caller tries again instead of publishing a failure the ledger does not hold."""
        try:
            return await asyncio.wait_for(
                self._erp.record_failure(request, source, error), self._settings.exporter_timeout_s
            )
        except (ErpError, TimeoutError) as exc:
            log.warning(
                "export %s: the ERP cannot record its failure (%r); will retry",
                request.payload.export_id,
                exc,
            )
            return None

    def _count_failure(self, outcome: str, error: ErpError | TimeoutError) -> None:
        """Count a failed try by the catalogue's code (a bounded label set)."""
        self.metrics.export_attempts.labels(outcome).inc()
        self.metrics.export_failures.labels(error_class(error)).inc()

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
