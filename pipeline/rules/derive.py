"""Derived events: the one builder (envelope, correlation id, deterministic id) and the processor's.

Every event the pipeline derives from another (a status change, an export request, a rejection
notice, an export result, a failure notice) is built by `derived`: it copies the cause's
company, item and actor, carries the cause's correlation id, and takes an id that is a pure
function of the cause, so a replayed or redelivered input yields duplicates that consumers drop
by `event_id`. Each producer of derived events is an `Origin` with its own uuid namespace
(fixed forever: changing one would change every id it derives).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from topics.events import (
    Envelope,
    ExportRequested,
    ItemEvent,
    ItemStatusChanged,
    ItemSubmitted,
    RejectionNotice,
)
from topics.limits import MESSAGE_CHARS, REASON_CHARS, truncate
from topics.payloads import (
    Actor,
    ExportRequestedPayload,
    ItemStatus,
    ItemStatusChangedPayload,
    ItemType,
    NoticeItem,
    RejectionNoticePayload,
)

E = TypeVar("E", bound=Envelope)


@dataclass(frozen=True)
class Origin:
    """A producer of derived events, known by the uuid namespace of the ids it derives."""

    name: str
    namespace: uuid.UUID

    def id(self, *parts: object) -> uuid.UUID:
        """The deterministic id named by `parts` (joined with `/`) in this origin's namespace."""
        return uuid.uuid5(self.namespace, "/".join(str(part) for part in parts))


#: The approval-queue processor (status changes, export requests, notices, daily summaries).
PROCESSOR = Origin("processor", uuid.UUID("0c4f6a8e-51d2-4c1b-9a7e-7e3d2b9f4a10"))
#: The export worker (export results, Failed to Export records, failure notices).
EXPORTER = Origin("exporter", uuid.UUID("0b7f9d64-3c1e-4f0a-9a3e-5d1c2b8e7f41"))
#: Dead letters (`EventRefused`) of every worker: one id per refused record and stage.
REFUSALS = Origin("refusals", uuid.UUID("6f1c3d2e-9a51-4a57-8a0e-2d4b8f0c1e77"))

#: Who hears about a rejection: the creator for these types, the sender for the others.
NOTIFY_CREATOR = frozenset(
    {
        ItemType.COMMITMENT,
        ItemType.COMMITMENT_CHANGE_ORDER,
        ItemType.PRIME_CONTRACT_CHANGE_ORDER,
    }
)


def correlation(event: Envelope) -> str:
    """The input's correlation id; an input without one starts a chain named by its own id."""
    return event.correlation_id or str(event.event_id)


def same_correlation(event: Envelope) -> str | None:
    """The event's correlation id as it is (None stays None)."""
    return event.correlation_id


def derived(
    model: type[E],
    cause: Envelope,
    payload: Any,
    *,
    event_id: uuid.UUID,
    occurred_at: dt.datetime | None = None,
    actor: Actor | None = None,
    correlate: Callable[[Envelope], str | None] = correlation,
) -> E:
    """A `model` event caused by `cause`: same company, item and correlation chain.

    `occurred_at` defaults to the cause's (the rules' outputs happen "when" their input did, so
    replays are deterministic); `actor` to the cause's actor (the exporter passes the system).
    `correlate` gives the correlation id from the cause: by default a cause without one starts
    a chain named by its own id; `same_correlation` keeps it as it is, for results that must be
    the same whichever copy (other `event_id`) of their cause they answer.
    """
    envelope: dict[str, Any] = {
        "event_id": event_id,
        "occurred_at": occurred_at or cause.occurred_at,
        "company_id": cause.company_id,
        "item": cause.item,
        "actor": actor or cause.actor,
        "correlation_id": correlate(cause),
        "payload": payload,
    }
    return model(**envelope)


def derived_id(source: Envelope | str, kind: str) -> uuid.UUID:
    """The processor's id for what `source` (an event, or a stable name) produces as `kind`."""
    name = str(source.event_id) if isinstance(source, Envelope) else source
    return PROCESSOR.id(name, kind)


def export_id(item_key: str, version: int) -> str:
    """One id per accepted submission: retries of the same submission reuse it."""
    return str(PROCESSOR.id(item_key, f"v{version}", "export"))


def status_changed(
    cause: ItemEvent,
    status: ItemStatus,
    previous: ItemStatus | None,
    version: int,
    *,
    submission: ItemSubmitted | None,
    reason: str | None = None,
    reasons: list[str] | None = None,
    erp_reference: str | None = None,
    sequence: int,
) -> ItemStatusChanged:
    """`ItemStatusChanged` caused by `cause`, describing the item as submitted.

    `sequence` is the item's counter for this change (1, 2, ...: the order the processor
    applied the item's changes in), the order every reader of erp.status goes by.

    `reason` and each of `reasons` are cut to what the event takes (with a marker), so the
    status change is always published, whatever its cause said.
    """
    sub = submission.payload if submission is not None else None
    return derived(
        ItemStatusChanged,
        cause,
        ItemStatusChangedPayload(
            status=status,
            previous_status=previous,
            submission_version=version,
            reason=truncate(reason, MESSAGE_CHARS) if reason is not None else None,
            reasons=[truncate(r, REASON_CHARS) for r in reasons or []],
            erp_reference=erp_reference,
            item_number=sub.number if sub else None,
            item_title=sub.title if sub else None,
            amount=sub.amount if sub else None,
            project=sub.project if sub else None,
            sent_by=submission.actor if submission else None,
            sent_at=submission.occurred_at if submission else None,
            sequence=sequence,
        ),
        event_id=derived_id(cause, "status"),
    )


def export_requested(
    cause: ItemEvent, template: ExportRequestedPayload | None, **fields: object
) -> ExportRequested:
    """`ExportRequested` caused by `cause` (an accept or a retry)."""
    payload = (
        template.model_copy(update=fields)
        if template is not None
        else ExportRequestedPayload.model_validate(fields)
    )
    return derived(ExportRequested, cause, payload, event_id=derived_id(cause, "export"))


def rejection_notice(cause: ItemEvent, to: Actor, item: NoticeItem, reason: str) -> RejectionNotice:
    """`RejectionNotice` to `to` about a rejection by `cause.actor`."""
    payload = RejectionNoticePayload(to=to.email, item=item, reason=reason, rejected_by=cause.actor)
    return derived(RejectionNotice, cause, payload, event_id=derived_id(cause, "rejection-notice"))


__all__ = [
    "EXPORTER",
    "PROCESSOR",
    "REFUSALS",
    "Origin",
    "correlation",
    "derived",
    "derived_id",
    "export_id",
    "export_requested",
    "rejection_notice",
    "same_correlation",
    "status_changed",
]
