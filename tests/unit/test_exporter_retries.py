"""The exporter's per-record flow with a fake ERP and a fake producer: retries, limits, results."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from consumers.dev import samples as se
from consumers.export.catalogue import ErrorCode, erp_error
from consumers.export.port import ErpError, ExportOutcome, PermanentErpError, TransientErpError
from consumers.export.worker import Exporter
from consumers.worker.loop import ConsumeLoop
from consumers.worker.subscriber import Outcome
from pipeline.settings import Settings
from tests.support.consume_loop import FakeConsumer, FakeProducer, FakeRecord, run_until
from tests.support.contract_cases import LONGER_ONCE_LOWERCASED
from tests.support.events import commitment_export
from topics import decode
from topics.events import ExportRequested
from topics.payloads import Actor, KafkaSource
from topics.record import Record
from topics.specs import EXPORTS

AT = dt.datetime(2026, 11, 21, 10, 0, tzinfo=dt.UTC)
KEY = b"acme-builders:commitment:sc-1"


class FakeErp:
    """Fails with the given errors in turn, then succeeds; records what it was asked."""

    def __init__(self, *errors: ErpError) -> None:
        self.errors = list(errors)
        self.exports = 0
        self.failures: list[ErpError] = []

    async def export(self, request: ExportRequested, source: KafkaSource) -> ExportOutcome:
        self.exports += 1
        if self.errors:
            raise self.errors.pop(0)
        return ExportOutcome(
            request.payload.export_id, request.payload.attempt, True, AT, erp_reference="SC-200"
        )

    async def export_batch(
        self, requests: Sequence[tuple[ExportRequested, KafkaSource]]
    ) -> list[ExportOutcome | ErpError | None]:
        results: list[ExportOutcome | ErpError | None] = []
        stopped: set[str] = set()
        for request, source in requests:
            if request.item_key in stopped:
                results.append(None)
                continue
            try:
                results.append(await self.export(request, source))
            except ErpError as exc:
                results.append(exc)
                stopped.add(request.item_key)
        return results

    async def record_failure(
        self, request: ExportRequested, source: KafkaSource, error: ErpError
    ) -> ExportOutcome:
        self.failures.append(error)
        return ExportOutcome(
            request.payload.export_id,
            request.payload.attempt,
            False,
            AT,
            error_code=error.code,
            error_message=error.message,
        )

    async def close(self) -> None:
        return None


def _exporter(erp: FakeErp, **settings: Any) -> tuple[Exporter, FakeProducer]:
    producer = FakeProducer()
    config = Settings(exporter_retry_base_s=0.001, exporter_retry_max_s=0.002, **settings)
    return Exporter(config, erp, producer, rand=lambda: 0.5), producer  # type: ignore[arg-type]


def _record() -> FakeRecord:
    event = commitment_export("sc-1", "prj-1", export_id="exp-1")
    return FakeRecord(json.dumps(event).encode(), partition=2, offset=7, key=KEY)


async def _consumed(exporter: Exporter, producer: FakeProducer, record: FakeRecord) -> None:
    """Run the exporter in the consume loop until `record` is committed."""
    consumer, stop = FakeConsumer([record]), asyncio.Event()
    loop = ConsumeLoop(
        exporter.subscriber(),
        consumer,  # type: ignore[arg-type]
        producer,  # type: ignore[arg-type]
        Settings(),
        stop,
        exporter.metrics,
        commit_every_s=0.005,
    )
    await run_until(loop, stop, lambda: consumer.committed(record.tp) == record.offset + 1)


async def test_transient_errors_are_retried_until_the_export_succeeds() -> None:
    erp = FakeErp(
        TransientErpError("operational_error", "connection refused"),
        TransientErpError("serialization_failure", "could not serialize"),
    )
    exporter, producer = _exporter(erp, exporter_max_attempts=5)
    await _consumed(exporter, producer, _record())
    assert erp.exports == 3 and erp.failures == []
    assert [event.event_type for _, event, _ in producer.sent] == ["ItemExported"]


async def test_after_the_attempt_limit_a_transient_error_lands_in_failed_to_export() -> None:
    erp = FakeErp(*[TransientErpError("operational_error", "connection refused")] * 3)
    exporter, producer = _exporter(erp, exporter_max_attempts=3)
    await _consumed(exporter, producer, _record())
    assert erp.exports == 3
    assert "gave up after 3 tries" in erp.failures[0].message
    by_topic = {topic: event for topic, event, _ in producer.sent}
    assert by_topic["erp.failed-to-export"].payload.source.offset == 7
    headers = dict(next(h for topic, _, h in producer.sent if topic == "erp.failed-to-export"))
    assert headers["erp.export.tries"] == b"3"
    assert headers["__connect.errors.exception.class.name"] == b"TransientErpError"


async def test_a_permanent_error_is_not_retried_and_notifies_sender_and_approver() -> None:
    erp = FakeErp(PermanentErpError("foreign_key_violation", "vendor V1001 is not present"))
    exporter, producer = _exporter(erp, exporter_max_attempts=5)
    await _consumed(exporter, producer, _record())
    assert erp.exports == 1
    topics = sorted(topic for topic, _, _ in producer.sent)
    assert topics == [
        "erp.export-results",
        "erp.failed-to-export",
        "erp.notifications",
        "erp.notifications",
    ]


class RefusedCommitErp(FakeErp):
    """Its batches fail as a whole with a permanent error (the commit refused); single
    exports succeed."""

    async def export_batch(
        self, requests: Sequence[tuple[ExportRequested, KafkaSource]]
    ) -> list[ExportOutcome | ErpError | None]:
        raise PermanentErpError("integrity_error", "commit refused")


async def test_a_batch_refused_as_a_whole_is_exported_one_at_a_time() -> None:
    erp = RefusedCommitErp()
    exporter, producer = _exporter(erp, exporter_max_attempts=5)
    await _consumed(exporter, producer, _record())
    assert erp.exports == 1 and erp.failures == []
    assert [event.event_type for _, event, _ in producer.sent] == ["ItemExported"]


async def test_a_batch_failing_transiently_counts_as_each_exports_first_try() -> None:
    class Down(FakeErp):
        async def export_batch(self, requests: Any) -> list[ExportOutcome | ErpError | None]:
            raise TransientErpError("operational_error", "connection refused")

    erp = Down(*[TransientErpError("operational_error", "connection refused")] * 5)
    exporter, producer = _exporter(erp, exporter_max_attempts=3)
    await _consumed(exporter, producer, _record())
    assert erp.exports == 2  # the batch was the first of the three tries
    assert "gave up after 3 tries" in erp.failures[0].message


async def test_an_undecodable_record_is_dead_lettered_without_asking_the_erp() -> None:
    erp = FakeErp()
    exporter, producer = _exporter(erp)
    await _consumed(exporter, producer, FakeRecord(b"{not json", partition=2, offset=7, key=KEY))
    assert erp.exports == 0
    [(topic, refused, _)] = producer.sent
    assert topic == "erp.dead-letters" and refused.payload.stage == "decode"


async def test_a_recipient_that_cannot_be_addressed_does_not_stop_the_failure() -> None:
    # An ExportRequested accepted before the contract refused its sender's address (here one
    # that lowercasing makes too long): the exporter raised building the sender's notice, the
    # record was dead-lettered and the item stayed `exporting`.
    request = decode(_record().value, EXPORTS)
    sender = Actor.model_construct(user_id="u-old", email=LONGER_ONCE_LOWERCASED, name="Old")
    request = request.model_copy(
        update={"payload": request.payload.model_copy(update={"sent_by": sender})}
    )
    exporter, producer = _exporter(FakeErp(PermanentErpError("vendor_missing", "no V1001")))
    record = Record("erp.exports", 2, 7, KEY, _record().value)
    assert await exporter.handle(request, record) is Outcome.PROCESSED
    (failed,) = producer.on("erp.failed-to-export")
    assert failed.event_type == "ExportFailed" and failed.payload.error_message == "no V1001"
    assert [e.event_type for e in producer.on("erp.export-results")] == ["ExportAttemptFailed"]
    assert [n.payload.to for n in producer.on("erp.notifications")] == [se.APPROVER["email"]]
    skipped = exporter.metrics.registry.get_sample_value(
        "erp_pipeline_notifications_total",
        {"kind": "ExportFailureNotice", "outcome": "unaddressable"},
    )
    assert skipped == 1


async def test_failed_tries_are_counted_by_the_catalogue_code() -> None:
    erp = FakeErp(
        erp_error(ErrorCode.JOB_NOT_EXPORTED, "Project prj-1 has no job in Spectrum yet"),
        TransientErpError("operational_error", "connection refused"),
        PermanentErpError("foreign_key_violation", "vendor V1001 is not present"),
    )
    exporter, producer = _exporter(erp, exporter_max_attempts=5)
    await _consumed(exporter, producer, _record())
    counted = {
        s.labels["error_class"]: s.value
        for metric in exporter.metrics.registry.collect()
        if metric.name == "erp_pipeline_export_failures"
        for s in metric.samples
        if s.name.endswith("_total")
    }
    assert counted == {"job_not_exported": 1, "erp_unavailable": 1, "erp_refused": 1}
    # the dead letter's exception class header stays the port's error class
    headers = dict(next(h for topic, _, h in producer.sent if topic == "erp.failed-to-export"))
    assert headers["__connect.errors.exception.class.name"] == b"PermanentErpError"
