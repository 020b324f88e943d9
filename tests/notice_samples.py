"""Notification events as the processor publishes them, for the notifier's tests."""

from __future__ import annotations

from typing import Any

from consumers.dev.samples import APPROVER, SENDER, envelope

CCO_ITEM = {
    "type": "commitment_change_order",
    "id": "cco-300",
    "number": "CCO-001",
    "title": "Added footing depth",
    "project_name": "Riverside Medical Office",
}


def _about(event: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    # The payload has its own `item` field, so it cannot go through envelope()'s keyword.
    event["item"] = {"type": item["type"], "id": item["id"]}
    event["payload"]["item"] = item
    return event


def rejection_notice(
    *,
    to: str = SENDER["email"],
    reason: str = "Wrong cost code on line 1",
    item: dict[str, Any] | None = None,
) -> dict[str, Any]:
    event = envelope("RejectionNotice", actor=APPROVER, to=to, reason=reason, rejected_by=APPROVER)
    return _about(event, item or CCO_ITEM)


def export_failure_notice(
    *, to: str = APPROVER["email"], error_message: str = "Vendor V1001 is inactive"
) -> dict[str, Any]:
    event = envelope("ExportFailureNotice", actor=APPROVER, to=to, error_message=error_message)
    return _about(event, CCO_ITEM)


def daily_summary(
    *, to: str = APPROVER["email"], titles: tuple[str, ...] = ("A", "B")
) -> dict[str, Any]:
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
            "sent_by": SENDER,
        }
        for n, title in enumerate(titles)
    ]
    return envelope("DailySummary", actor=APPROVER, to=to, date="2026-11-21", items=lines)
