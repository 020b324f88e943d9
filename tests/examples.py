"""One valid example (a JSON-ready dict) of every event type of the contract."""

from __future__ import annotations

from typing import Any

from consumers.dev import samples as se

EXPORT_ID = "2b0a5f3e-1c1d-5f0e-9d55-0e6c3b6f7a10"
SOURCE = {
    "topic": "erp.exports",
    "partition": 3,
    "offset": 42,
    "key": "acme-builders:commitment:sc-200",
}
ITEM = {"type": "commitment", "id": "sc-200", "number": "SC-200", "title": "Concrete foundations"}


def _item_event(event_type: str, **payload: Any) -> dict[str, Any]:
    return se.envelope(
        event_type, item=("commitment", "sc-200"), actor=se.APPROVER, payload=payload
    )


def valid_examples() -> dict[str, dict[str, Any]]:
    """event_type → a valid event of that type."""
    commitment = se.commitment_submitted()
    return {
        "ApproverUpdated": se.approver_updated(se.APPROVER),
        "CompanySettingsUpdated": se.company_settings(),
        "ItemSubmitted": commitment,
        "ItemRetrieved": se.retrieved("commitment", "sc-200"),
        "ItemAccepted": se.accepted("project", "prj-100", erp_job_id="RMO100", job_template="COMM"),
        "ItemRejected": se.rejected("commitment", "sc-200", "Vendor insurance certificate expired"),
        "ExportRetryRequested": _item_event("ExportRetryRequested"),
        "ExportRequested": _item_event(
            "ExportRequested",
            export_id=EXPORT_ID,
            submission_version=1,
            attempt=1,
            created_by=se.SENDER,
            sent_by=se.SENDER,
            accepted_by=se.APPROVER,
            number="SC-200",
            title="Concrete foundations",
            amount="250000.00",
            project={"id": "prj-100", "name": "Riverside Medical Office"},
            snapshot=commitment["payload"]["snapshot"],
            accept_fields={"details": "Approved by accounting"},
        ),
        "ItemExported": _item_event(
            "ItemExported",
            export_id=EXPORT_ID,
            erp_reference="SC-200",
            exported_at="2026-11-21T10:05:00Z",
        ),
        "ExportAttemptFailed": _item_event(
            "ExportAttemptFailed",
            export_id=EXPORT_ID,
            attempt=1,
            retryable=False,
            error_code="vendor_not_found",
            error_message="Vendor V9999 does not exist",
        ),
        "ExportFailed": _item_event(
            "ExportFailed",
            export_id=EXPORT_ID,
            attempt=1,
            retryable=False,
            error_code="vendor_not_found",
            error_message="Vendor V9999 does not exist",
            source=SOURCE,
        ),
        "ItemStatusChanged": _item_event(
            "ItemStatusChanged",
            status="ready_to_export",
            previous_status="rejected",
            submission_version=2,
        ),
        "RejectionNotice": _item_event(
            "RejectionNotice",
            to=se.SENDER["email"],
            item=ITEM,
            reason="Wrong cost code",
            rejected_by=se.APPROVER,
        ),
        "DailySummary": se.envelope(
            "DailySummary",
            actor=se.APPROVER,
            to=se.APPROVER["email"],
            date="2026-11-21",
            items=[
                {
                    "item": ITEM,
                    "title": "Concrete foundations",
                    "submitted_at": "2026-11-20T15:00:00Z",
                    "sent_by": se.SENDER,
                }
            ],
        ),
        "ExportFailureNotice": _item_event(
            "ExportFailureNotice",
            to=se.SENDER["email"],
            item=ITEM,
            error_message="Vendor V9999 does not exist",
        ),
        "EventRefused": se.envelope(
            "EventRefused",
            actor=se.APPROVER,
            stage="schema",
            error="payload.reason: Field required",
            source={**SOURCE, "topic": "erp.decisions"},
            raw='{"event_type": "ItemRejected"}',
        ),
    }
