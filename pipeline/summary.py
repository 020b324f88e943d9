"""The ERP Integrations Daily Summary: who gets one, when, listing what (pure; clock passed in)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from pipeline.directory import Directory, may_decide
from pipeline.outputs import NAMESPACE
from topics.events import DailySummary, ItemStatusChanged
from topics.payloads import SYSTEM_ACTOR, DailySummaryPayload, ItemStatus, NoticeItem, SummaryLine

Sent = tuple[str, str, dt.date]  # (company, approver e-mail, company-local date)


@dataclass
class SummaryState:
    """The latest status of every item and the summaries already sent."""

    latest: dict[str, ItemStatusChanged] = field(default_factory=dict)
    sent: set[Sent] = field(default_factory=set)

    def apply_status(self, event: ItemStatusChanged) -> None:
        """Keep the newest status per item (by occurred_at; older redeliveries are ignored)."""
        known = self.latest.get(event.item_key)
        if known is None or (known.occurred_at, known.payload.submission_version) <= (
            event.occurred_at,
            event.payload.submission_version,
        ):
            self.latest[event.item_key] = event

    def apply_summary(self, event: DailySummary) -> None:
        """Remember a summary that was published (read back from erp.notifications)."""
        self.sent.add((event.company_id, event.payload.to, event.payload.date))

    def waiting(self, company_id: str) -> list[ItemStatusChanged]:
        """Items of the company sitting in Ready to Export, oldest first."""
        found = [
            e
            for e in self.latest.values()
            if e.company_id == company_id and e.payload.status is ItemStatus.READY_TO_EXPORT
        ]
        return sorted(found, key=lambda e: (e.occurred_at, e.item_key))


def summary_id(company_id: str, to: str, date: dt.date) -> uuid.UUID:
    """One id per (company, recipient, day): a re-sent summary is a duplicate, dropped by id."""
    return uuid.uuid5(NAMESPACE, f"{company_id}/{to}/{date.isoformat()}/daily-summary")


def _line(event: ItemStatusChanged) -> SummaryLine:
    title = event.payload.item_title or event.item.id
    return SummaryLine(
        item=NoticeItem(
            type=event.item.type, id=event.item.id, number=event.payload.item_number, title=title
        ),
        title=title,
        submitted_at=event.occurred_at,
        sent_by=event.actor,
    )


def due_summaries(
    state: SummaryState, directory: Directory, now: dt.datetime
) -> list[DailySummary]:
    """Summaries due at `now`: once per subscribed approver per company-local day, from the
    company's `daily_summary_hour` on, and only while at least one item waits."""
    due = []
    for company_id in directory.companies():
        settings = directory.settings(company_id)
        local = now.astimezone(ZoneInfo(settings.timezone))
        waiting = state.waiting(company_id)
        if local.hour < settings.daily_summary_hour or not waiting:
            continue
        for approver in directory.approvers(company_id):
            if not (approver.digest_subscribed and may_decide(approver)):
                continue
            if (company_id, approver.email, local.date()) in state.sent:
                continue
            due.append(
                DailySummary(
                    event_id=summary_id(company_id, approver.email, local.date()),
                    occurred_at=now,
                    company_id=company_id,
                    actor=SYSTEM_ACTOR,
                    correlation_id=f"daily-summary/{company_id}/{local.date().isoformat()}",
                    payload=DailySummaryPayload(
                        to=approver.email, date=local.date(), items=[_line(e) for e in waiting]
                    ),
                )
            )
    return due
