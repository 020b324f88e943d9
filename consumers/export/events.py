"""The events an export emits: its result, the Failed to Export record, failure notices (pure)."""

from __future__ import annotations

from typing import Any, NamedTuple, TypeVar

from pydantic import ValidationError

from consumers.export.port import ExportOutcome
from pipeline.rules.derive import EXPORTER, derived, same_correlation
from topics.events import (
    Envelope,
    ExportAttemptFailed,
    ExportFailed,
    ExportFailureNotice,
    ExportRequested,
    ItemExported,
)
from topics.fields import printable
from topics.limits import MESSAGE_CHARS, truncate
from topics.payloads import (
    SYSTEM_ACTOR,
    ExportAttemptFailedPayload,
    ExportFailedPayload,
    ExportFailureNoticePayload,
    ItemExportedPayload,
    KafkaSource,
    NoticeItem,
)

#: Who the exporter says did it.
EXPORTER_CONNECTOR = "erp-exporter"
#: Longest `error_code` the failure events take (the ERP's own codes may be longer).
ERROR_CODE_CHARS = 128
#: Longest error message in the Kafka Connect-style dead-letter header.
HEADER_MESSAGE_CHARS = 4000

E = TypeVar("E", bound=Envelope)


def _result(
    model: type[E], request: ExportRequested, outcome: ExportOutcome, payload: Any, *kind: object
) -> E:
    """An event the export of `request` derives, recorded by the system at the ledger's time.

    Its id derives from the export id and `kind`, and it carries the request's correlation id
    as it is: re-emitting a result after a redelivery (or for a second copy of the request)
    repeats the same event, so downstream de-duplication on `event_id` drops the repeat.
    """
    return derived(
        model,
        request,
        payload,
        event_id=EXPORTER.id(outcome.export_id, *kind),
        occurred_at=outcome.recorded_at,
        actor=SYSTEM_ACTOR,
        correlate=same_correlation,
    )


def item_exported(request: ExportRequested, outcome: ExportOutcome) -> ItemExported:
    """`ItemExported` for a ledger success."""
    assert outcome.erp_reference is not None
    payload = ItemExportedPayload(
        export_id=outcome.export_id,
        erp_reference=outcome.erp_reference,
        exported_at=outcome.recorded_at,
        submission_version=request.payload.submission_version,
    )
    return _result(ItemExported, request, outcome, payload, "exported")


def _error_message(outcome: ExportOutcome, default: str) -> str:
    """The ERP's error as the contract's text can carry it (the ERP may answer anything)."""
    return truncate(printable(outcome.error_message or default), MESSAGE_CHARS)


def _failure_fields(request: ExportRequested, outcome: ExportOutcome) -> dict[str, object]:
    # `retryable` says whether the exporter will try again by itself; a result it publishes is
    # final, so it is always false. An approver may still retry from Failed to Export.
    # The ERP's code and message are cut (with a marker) to what the events take, and their
    # control characters replaced: the ERP may answer anything.
    code = truncate(printable(outcome.error_code or "", multiline=False), ERROR_CODE_CHARS)
    return {
        "export_id": outcome.export_id,
        "attempt": outcome.attempt,
        "retryable": False,
        "error_code": code or "export_failed",
        "error_message": _error_message(outcome, "export failed"),
        "submission_version": request.payload.submission_version,
    }


def attempt_failed(request: ExportRequested, outcome: ExportOutcome) -> ExportAttemptFailed:
    """`ExportAttemptFailed` (on erp.export-results) for a ledger failure."""
    payload = ExportAttemptFailedPayload.model_validate(_failure_fields(request, outcome))
    return _result(
        ExportAttemptFailed, request, outcome, payload, outcome.attempt, "attempt-failed"
    )


def export_failed(
    request: ExportRequested, outcome: ExportOutcome, source: KafkaSource
) -> ExportFailed:
    """The Failed to Export record, with the original record's coordinates."""
    payload = ExportFailedPayload.model_validate(
        {**_failure_fields(request, outcome), "source": source}
    )
    return _result(ExportFailed, request, outcome, payload, outcome.attempt, "failed")


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
        "__connect.errors.exception.message": truncate(
            printable(outcome.error_message or ""), HEADER_MESSAGE_CHARS
        ),
        "erp.export.attempt": str(outcome.attempt),
        "erp.export.tries": str(tries),
    }
    return [(name, value.encode("utf-8")) for name, value in values.items()]


class FailureNotices(NamedTuple):
    """The failure notices of an export, and who could not be given one."""

    notices: list[ExportFailureNotice]
    #: `sender` / `approver`: people whose address no notice can carry (the contract of the
    #: request's time let it in). They are skipped: the failure itself must still be published.
    unaddressable: list[str]


def failure_notices(request: ExportRequested, outcome: ExportOutcome) -> FailureNotices:
    """One `ExportFailureNotice` to the sender and one to the person who acted last on the
    export (once each): whoever asked for this attempt with a Retry (`retried_by`), else the
    approver who accepted. The approver of an earlier attempt is not told about a retry they
    did not ask for (and may no longer be entitled to hear about).

    Addresses are lowercased, so one person is told once whatever the case of each copy.
    """
    p = request.payload
    item = NoticeItem(
        type=request.item.type,
        id=request.item.id,
        number=p.number,
        title=p.title,
        project_name=p.project.name,
    )
    recipients: dict[str, str] = {}
    last = p.retried_by or p.accepted_by
    for role, person in (("sender", p.sent_by), ("approver", last)):
        recipients.setdefault(person.email.lower(), role)
    found = FailureNotices([], [])
    for email, role in recipients.items():
        try:
            payload = ExportFailureNoticePayload(
                to=email, item=item, error_message=_error_message(outcome, "")
            )
        except ValidationError:
            found.unaddressable.append(role)
            continue
        notice = _result(
            ExportFailureNotice, request, outcome, payload, outcome.attempt, "notice", email
        )
        found.notices.append(notice)
    return found
