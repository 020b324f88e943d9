"""Contract events as JSON-ready dicts: an example of each type, exports, notices, their keys."""

from __future__ import annotations

import json
import uuid
from typing import Any

from consumers.dev import samples as se
from pipeline.processor.routing import home_partition
from topics import decode
from topics.events import ExportRequested
from topics.specs import EXPORTS

# --- keys and companies ------------------------------------------------------------------


def raw_key(raw: dict[str, Any]) -> bytes:
    """The contract key of an event given as a dict (item, user or company settings)."""
    if "item" in raw:
        return f"{raw['company_id']}:{raw['item']['type']}:{raw['item']['id']}".encode()
    if raw["event_type"] == "ApproverUpdated":
        return f"{raw['company_id']}:user:{raw['payload']['user_id']}".encode()
    return f"{raw['company_id']}:settings".encode()


def item_homed_on(
    partition: int, prefix: str, item_type: str, company: str = se.COMPANY, partitions: int = 6
) -> str:
    """A new item id (`prefix-...`) whose key's murmur2 partition is `partition`: published
    there, its records are handled where they arrive rather than re-routed."""
    while True:
        item = f"{prefix}-{uuid.uuid4().hex[:8]}"
        if home_partition(f"{company}:{item_type}:{item}".encode(), partitions) == partition:
            return item


def for_company(company: str, raw: dict[str, Any]) -> dict[str, Any]:
    """A copy of a sample event that belongs to `company` instead of the demo company."""
    return {**raw, "company_id": company}


# --- one valid example of every event type ------------------------------------------------

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


# --- ExportRequested, as the processor publishes it for an accepted sample -----------------


def export_requested(
    submitted: dict[str, Any],
    accept_fields: dict[str, Any],
    *,
    export_id: str | None = None,
    attempt: int = 1,
    company: str = se.COMPANY,
) -> dict[str, Any]:
    """The export of an accepted sample submission (a JSON-ready dict)."""
    payload = submitted["payload"]
    item = submitted["item"]
    return se.envelope(
        "ExportRequested",
        item=(item["type"], item["id"]),
        actor=se.APPROVER,
        company=company,
        export_id=export_id or str(uuid.uuid4()),
        submission_version=1,
        attempt=attempt,
        created_by=payload["created_by"],
        sent_by=se.SENDER,
        accepted_by=se.APPROVER,
        number=payload["number"],
        title=payload["title"],
        amount=payload["amount"],
        project=payload["project"],
        snapshot=payload["snapshot"],
        accept_fields=accept_fields,
    )


def project_export(
    project_id: str, job_id: str, *, template: str = "COMM", company: str = se.COMPANY, **kw: Any
) -> dict[str, Any]:
    """A project accepted with `job_id` from `template`; the project is its own project ref."""
    submitted = se.project_submitted(project_id)
    submitted["payload"]["project"] = {"id": project_id, "name": "Riverside Medical Office"}
    return export_requested(
        submitted, {"erp_job_id": job_id, "job_template": template}, company=company, **kw
    )


def commitment_export(
    commitment_id: str,
    project_id: str,
    *,
    vendor: str | None = "V1001",
    number: str = "SC-200",
    company: str = se.COMPANY,
    **kw: Any,
) -> dict[str, Any]:
    """A subcontract on `project_id` with vendor `vendor` (its ERP vendor id)."""
    submitted = se.commitment_submitted(commitment_id, erp_vendor_id=vendor, number=number)
    submitted["payload"]["project"] = {"id": project_id, "name": "Riverside Medical Office"}
    return export_requested(submitted, {}, company=company, **kw)


def export_model(event: dict[str, Any]) -> ExportRequested:
    """The export event as the exporter will decode it."""
    decoded: ExportRequested = decode(json.dumps(event), EXPORTS)
    return decoded


# --- notifications, as the processor publishes them for the notifier ---------------------

CCO_ITEM = {
    "type": "commitment_change_order",
    "id": "cco-300",
    "number": "CCO-001",
    "title": "Added footing depth",
    "project_name": "Riverside Medical Office",
}


def _notice_about(event: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    # The payload has its own `item` field, so it cannot go through envelope()'s keyword.
    event["item"] = {"type": item["type"], "id": item["id"]}
    event["payload"]["item"] = item
    return event


def rejection_notice(
    *,
    to: str = se.SENDER["email"],
    reason: str = "Wrong cost code on line 1",
    item: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A `RejectionNotice` about `item` (a change order by default)."""
    event = se.envelope(
        "RejectionNotice", actor=se.APPROVER, to=to, reason=reason, rejected_by=se.APPROVER
    )
    return _notice_about(event, item or CCO_ITEM)


def export_failure_notice(
    *, to: str = se.APPROVER["email"], error_message: str = "Vendor V1001 is inactive"
) -> dict[str, Any]:
    """An `ExportFailureNotice` about the sample change order."""
    event = se.envelope(
        "ExportFailureNotice", actor=se.APPROVER, to=to, error_message=error_message
    )
    return _notice_about(event, CCO_ITEM)


def daily_summary(
    *, to: str = se.APPROVER["email"], titles: tuple[str, ...] = ("A", "B"), more_items: int = 0
) -> dict[str, Any]:
    """A `DailySummary` listing one waiting commitment per title (and `more_items` unlisted)."""
    lines = [
        {
            "item": {
                "type": "commitment",
                "id": f"sc-{n}",
                "number": f"SC-{n}",
                "project_name": "Riverside Medical Office",
            },
            "title": title,
            "submitted_at": f"2026-11-20T1{n}:00:00Z",
            "sent_by": se.SENDER,
        }
        for n, title in enumerate(titles)
    ]
    summary = se.envelope("DailySummary", actor=se.APPROVER, to=to, date="2026-11-21", items=lines)
    if more_items:
        summary["payload"]["more_items"] = more_items
    return summary


# --- values near the size limits ----------------------------------------------------------


def commitment_of_size(item_id: str, size: int) -> dict[str, Any]:
    """A valid commitment submission whose JSON takes at most `size` bytes, and nearly that.

    Its line items leave out their optional fields, which the processor's stored state spells
    out (`"erp_cost_code":null`...): the state takes more room than the submission did.
    """
    raw = se.commitment_submitted(item_id)
    base = len(json.dumps(raw).encode())
    line = {"id": "li-000000", "cost_code": "03-300", "amount": "1.00"}
    each = len(json.dumps(line).encode()) + 2  # and ", " between two lines
    lines = raw["payload"]["snapshot"]["line_items"]
    for n in range(max(0, (size - base) // each)):
        lines.append({**line, "id": f"li-{n:06d}"})
    assert len(json.dumps(raw).encode()) <= size
    return raw
