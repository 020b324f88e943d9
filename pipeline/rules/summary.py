"""The ERP Integrations Daily Summary: who gets one, when, listing what (pure; clock passed in)."""

from __future__ import annotations

import datetime as dt
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple
from zoneinfo import ZoneInfo

from pipeline.rules.derive import PROCESSOR
from pipeline.rules.directory import Directory, may_decide
from topics import record_size
from topics.events import DailySummary, ItemStatusChanged
from topics.limits import MAX_RECORD_BYTES
from topics.payloads import (
    SYSTEM_ACTOR,
    Actor,
    DailySummaryPayload,
    ItemStatus,
    ItemType,
    NoticeItem,
    SummaryLine,
)

Sent = tuple[str, str, dt.date]  # (company, approver e-mail, company-local date)
#: Where a status change stands among its item's: (1, sequence) for those the pipeline
#: numbered; (0, time, version) for those written before sequences, which all come first and
#: among themselves keep the order they always had.
Order = tuple[int, float, int]


def order_of(event: ItemStatusChanged) -> Order:
    """The key that orders an item's status changes as the processor applied them."""
    sequence = event.payload.sequence
    if sequence is not None:
        return (1, float(sequence), 0)
    return (0, event.occurred_at.timestamp(), event.payload.submission_version)


#: `order_of` as kept per item: the sequence alone (an int) for the changes the pipeline
#: numbered, the (time, version) pair for older ones; a third of the tuple's memory.
Stored = int | tuple[float, int]


def _stored(event: ItemStatusChanged) -> Stored:
    sequence = event.payload.sequence
    if sequence is not None:
        return sequence
    return (event.occurred_at.timestamp(), event.payload.submission_version)


def _older(new: Stored, known: Stored) -> bool:
    """`order_of(new) < order_of(known)`, on the stored forms."""
    if isinstance(new, int) != isinstance(known, int):
        return not isinstance(new, int)  # unsequenced changes all come first
    return new < known  # type: ignore[operator]  # same kind: both ints or both pairs


class Waiting(NamedTuple):
    """What a summary line needs of an item whose newest status is Ready to Export."""

    item_key: str
    company_id: str
    item_type: ItemType
    item_id: str
    number: str | None
    title: str | None
    submitted_at: dt.datetime
    sent_by: Actor
    project_name: str | None
    amount: str | None


@dataclass
class SummaryState:
    """The newest status of every item (its `order_of` only, stored small) and, for those waiting in
    Ready to Export, the few fields a summary line shows; the summaries already sent.

    Kept small: one instance holds every item of every company it has seen.
    """

    latest: dict[str, Stored] = field(default_factory=dict)
    ready: dict[str, Waiting] = field(default_factory=dict)
    sent: set[Sent] = field(default_factory=set)
    _actors: dict[Actor, Actor] = field(default_factory=dict)

    def apply_status(self, event: ItemStatusChanged) -> None:
        """Keep the newest status per item in the pipeline's order (`order_of`); an older
        one (a redelivery, a republished outbox) is ignored."""
        key = event.item_key
        newest = _stored(event)
        known = self.latest.get(key)
        if known is not None and _older(newest, known):
            return
        self.latest[key] = newest
        if event.payload.status != ItemStatus.READY_TO_EXPORT:
            self.ready.pop(key, None)
            return
        self.ready[key] = Waiting(
            key,
            sys.intern(event.company_id),
            event.item.type,
            event.item.id,
            event.payload.item_number,
            event.payload.item_title,
            event.occurred_at,
            self._actors.setdefault(event.actor, event.actor),
            # one copy of a project's name however many of its items wait
            sys.intern(project.name) if (project := event.payload.project) else None,
            str(event.payload.amount) if event.payload.amount is not None else None,
        )

    def apply_summary(self, event: DailySummary) -> None:
        """Remember a summary that was published (read back from erp.notifications)."""
        self.sent.add((event.company_id, event.payload.to, event.payload.date))

    def waiting(self, company_id: str) -> list[Waiting]:
        """Items of the company sitting in Ready to Export, oldest first."""
        found = [w for w in self.ready.values() if w.company_id == company_id]
        return sorted(found, key=lambda w: (w.submitted_at, w.item_key))


def summary_id(company_id: str, to: str, date: dt.date) -> uuid.UUID:
    """One id per (company, recipient, day): a re-sent summary is a duplicate, dropped by id."""
    return PROCESSOR.id(company_id, to, date.isoformat(), "daily-summary")


def _line(waiting: Waiting, zone: ZoneInfo) -> SummaryLine:
    title = waiting.title or waiting.item_id
    return SummaryLine(
        item=NoticeItem(
            type=waiting.item_type,
            id=waiting.item_id,
            number=waiting.number,
            title=title,
            project_name=waiting.project_name,
        ),
        title=title,
        # people read it as local time: in the company's timezone, its offset written
        submitted_at=waiting.submitted_at.astimezone(zone),
        sent_by=waiting.sent_by,
        amount=waiting.amount,
    )


Lines = list[tuple[SummaryLine, int]]  # each with the bytes of its encoding


class _Lines:
    """The summary lines of `waiting` (oldest first), each with the bytes of its encoding,
    built only as far as a summary reads them: one record holds a few hundred, and building
    all of 100 000 waiting items' lines took seconds of the processor's event loop."""

    def __init__(self, waiting: list[Waiting], zone: ZoneInfo) -> None:
        self._waiting, self._zone = waiting, zone
        self._built: Lines = []

    def __len__(self) -> int:
        return len(self._waiting)

    def __iter__(self) -> Iterator[tuple[SummaryLine, int]]:
        for index, waiting in enumerate(self._waiting):
            if index == len(self._built):
                line = _line(waiting, self._zone)
                self._built.append((line, len(line.model_dump_json(exclude_none=True).encode())))
            yield self._built[index]


def _capped(summary: DailySummary, lines: _Lines) -> DailySummary:
    """`summary` listing as many of `lines` as fit in one record, in order, and counting the
    rest in `more_items`.

    Measured by bytes, as the codec writes them: the summary without lines but with the
    largest count of the rest, then each line's encoding and a comma. The sum is an upper
    bound of the encoded summary, so the result always fits.
    """
    empty = summary.model_copy(
        update={
            "payload": summary.payload.model_copy(update={"items": [], "more_items": len(lines)})
        }
    )
    room = MAX_RECORD_BYTES - record_size(empty)
    kept: list[SummaryLine] = []
    for line, size in lines:
        room -= size + 1
        if room < 0:
            break
        kept.append(line)
    payload = summary.payload.model_copy(
        update={"items": kept, "more_items": len(lines) - len(kept)}
    )
    return summary.model_copy(update={"payload": payload})


def due_summaries(
    state: SummaryState, directory: Directory, now: dt.datetime
) -> list[DailySummary]:
    """Summaries due at `now`: once per subscribed approver per company-local day, from the
    company's `daily_summary_hour` on, and only while at least one item waits.

    A summary lists the items waiting longest, as many as fit in one record, and counts the
    others in `more_items`: a few thousand waiting items never make it too big to publish.
    """
    due = []
    for company_id in directory.companies():
        settings = directory.settings(company_id)
        zone = ZoneInfo(settings.timezone)
        local = now.astimezone(zone)
        if local.hour < settings.daily_summary_hour:
            continue
        # who is still due today, before anything is read of the waiting items: the timer
        # asks every minute, and once the day's summaries are out nobody is
        recipients = [
            approver
            for approver in directory.approvers(company_id)
            if approver.digest_subscribed
            and may_decide(approver)
            and (company_id, approver.email, local.date()) not in state.sent
        ]
        if not recipients:
            continue
        waiting = state.waiting(company_id)
        if not waiting:
            continue
        lines = _Lines(waiting, zone)  # built once per company, as far as read
        for approver in recipients:
            summary = DailySummary(
                event_id=summary_id(company_id, approver.email, local.date()),
                occurred_at=now,
                company_id=company_id,
                actor=SYSTEM_ACTOR,
                correlation_id=f"daily-summary/{company_id}/{local.date().isoformat()}",
                payload=DailySummaryPayload(
                    to=approver.email,
                    date=local.date(),
                    company_name=settings.company_name,
                    items=[],
                ),
            )
            due.append(_capped(summary, lines))
    return due
