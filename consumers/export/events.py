"""The events an export emits: its result, the Failed to Export record, failure notices (pure)."""

from __future__ import annotations

import uuid

from consumers.export.port import ExportOutcome
from topics.events import (
    ExportAttemptFailed,
    ExportFailed,
    ExportFailureNotice,
    ExportRequested,
    ItemExported,
)
from topics.payloads import (
    SYSTEM_ACTOR,
    ExportAttemptFailedPayload,
    ExportFailedPayload,
    ExportFailureNoticePayload,
    ItemExportedPayload,
    KafkaSource,
    NoticeItem,
)

#: Result ids derive from the export: re-emitting a result after a redelivery repeats its id,
#: so downstream de-duplication on `event_id` drops the repeat.
_NAMESPACE = uuid.UUID("0b7f9d64-3c1e-4f0a-9a3e-5d1c2b8e7f41")

#: Who the exporter says did it.
EXPORTER_CONNECTOR = "erp-exporter"


def _id(*parts: object) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, "/".join(str(part) for part in parts))


def item_exported(request: ExportRequested, outcome: ExportOutcome) -> ItemExported:
    """`ItemExported` for a ledger success."""
    assert outcome.erp_reference is not None
    return ItemExported(
        event_id=_id(outcome.export_id, "exported"),
        occurred_at=outcome.recorded_at,
        company_id=request.company_id,
        item=request.item,
        actor=SYSTEM_ACTOR,
        correlation_id=request.correlation_id,
        payload=ItemExportedPayload(
            export_id=outcome.export_id,
            erp_reference=outcome.erp_reference,
            exported_at=outcome.recorded_at,
            submission_version=request.payload.submission_version,
        ),
    )


def _failure_fields(request: ExportRequested, outcome: ExportOutcome) -> dict[str, object]:
    # `retryable` says whether the exporter will try again by itself; a result it publishes is
    # final, so it is always false. An approver may still retry from Failed to Export.
    return {
        "export_id": outcome.export_id,
        "attempt": outcome.attempt,
        "retryable": False,
        "error_code": outcome.error_code or "export_failed",
        "error_message": (outcome.error_message or "export failed")[:8000],
        "submission_version": request.payload.submission_version,
    }


def attempt_failed(request: ExportRequested, outcome: ExportOutcome) -> ExportAttemptFailed:
    """`ExportAttemptFailed` (on erp.export-results) for a ledger failure."""
    return ExportAttemptFailed(
        event_id=_id(outcome.export_id, outcome.attempt, "attempt-failed"),
        occurred_at=outcome.recorded_at,
        company_id=request.company_id,
        item=request.item,
        actor=SYSTEM_ACTOR,
        correlation_id=request.correlation_id,
        payload=ExportAttemptFailedPayload.model_validate(_failure_fields(request, outcome)),
    )


def export_failed(
    request: ExportRequested, outcome: ExportOutcome, source: KafkaSource
) -> ExportFailed:
    """The Failed to Export record, with the original record's coordinates."""
    return ExportFailed(
        event_id=_id(outcome.export_id, outcome.attempt, "failed"),
        occurred_at=outcome.recorded_at,
        company_id=request.company_id,
        item=request.item,
        actor=SYSTEM_ACTOR,
        correlation_id=request.correlation_id,
        payload=ExportFailedPayload.model_validate(
            {**_failure_fields(request, outcome), "source": source}
        ),
    )


def dead_letter_headers(
    outcome: ExportOutcome, source: KafkaSource, *, error_class: str, tries: int
) -> list[tuple[str, bytes]]:
    """Kafka Connect-style dead-letter headers, so Connect tooling can read the record."""
    values = {
        "__connect.errors.topic": source.topic,
        "__connect.errors.partition": str(source.partition),
        "__connect.errors.offset": str(source.offset),
        "__connect.errors.connector.name": EXPORTER_CONNECTOR,
        "__connect.errors.stage": "TASK_PUT",
        "__connect.errors.exception.class.name": error_class,
        "__connect.errors.exception.message": (outcome.error_message or "")[:4000],
        "erp.export.attempt": str(outcome.attempt),
        "erp.export.tries": str(tries),
    }
    return [(name, value.encode("utf-8")) for name, value in values.items()]


def failure_notices(request: ExportRequested, outcome: ExportOutcome) -> list[ExportFailureNotice]:
    """One `ExportFailureNotice` to the sender and one to the approver who accepted (once each)."""
    p = request.payload
    item = NoticeItem(
        type=request.item.type,
        id=request.item.id,
        number=p.number,
        title=p.title,
        project_name=p.project.name,
    )
    recipients = dict.fromkeys(person.email.lower() for person in (p.sent_by, p.accepted_by))
    return [
        ExportFailureNotice(
            event_id=_id(outcome.export_id, outcome.attempt, "notice", email),
            occurred_at=outcome.recorded_at,
            company_id=request.company_id,
            item=request.item,
            actor=SYSTEM_ACTOR,
            correlation_id=request.correlation_id,
            payload=ExportFailureNoticePayload(
                to=email, item=item, error_message=(outcome.error_message or "")[:8000]
            ),
        )
        for email in recipients
    ]
