"""The events the processor derives from an input: deterministic ids, the input's correlation."""

from __future__ import annotations

import uuid

from topics.events import (
    Envelope,
    ExportRequested,
    ItemEvent,
    ItemStatusChanged,
    ItemSubmitted,
    RejectionNotice,
)
from topics.payloads import (
    Actor,
    ExportRequestedPayload,
    ItemStatus,
    ItemStatusChangedPayload,
    ItemType,
    NoticeItem,
    RejectionNoticePayload,
)

#: Namespace of every id the processor derives; same input => same output id, so a replayed or
#: redelivered input yields duplicates that consumers drop by `event_id`.
NAMESPACE = uuid.UUID("0c4f6a8e-51d2-4c1b-9a7e-7e3d2b9f4a10")

#: Who hears about a rejection: the creator for these types, the sender for the others.
NOTIFY_CREATOR = frozenset(
    {
        ItemType.COMMITMENT,
        ItemType.COMMITMENT_CHANGE_ORDER,
        ItemType.PRIME_CONTRACT_CHANGE_ORDER,
    }
)


def derived_id(source: Envelope | str, kind: str) -> uuid.UUID:
    """A deterministic id for what `source` (an event, or a stable name) produces as `kind`."""
    name = str(source.event_id) if isinstance(source, Envelope) else source
    return uuid.uuid5(NAMESPACE, f"{name}/{kind}")


def correlation(event: Envelope) -> str:
    """The input's correlation id; an input without one starts a chain named by its own id."""
    return event.correlation_id or str(event.event_id)


def export_id(item_key: str, version: int) -> str:
    """One id per accepted submission: retries of the same submission reuse it."""
    return str(uuid.uuid5(NAMESPACE, f"{item_key}/v{version}/export"))


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
) -> ItemStatusChanged:
    """`ItemStatusChanged` caused by `cause`, describing the item as submitted."""
    sub = submission.payload if submission is not None else None
    return ItemStatusChanged(
        event_id=derived_id(cause, "status"),
        occurred_at=cause.occurred_at,
        company_id=cause.company_id,
        item=cause.item,
        actor=cause.actor,
        correlation_id=correlation(cause),
        payload=ItemStatusChangedPayload(
            status=status,
            previous_status=previous,
            submission_version=version,
            reason=reason,
            reasons=reasons or [],
            erp_reference=erp_reference,
            item_number=sub.number if sub else None,
            item_title=sub.title if sub else None,
            amount=sub.amount if sub else None,
            project=sub.project if sub else None,
            sent_by=submission.actor if submission else None,
            sent_at=submission.occurred_at if submission else None,
        ),
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
    return ExportRequested(
        event_id=derived_id(cause, "export"),
        occurred_at=cause.occurred_at,
        company_id=cause.company_id,
        item=cause.item,
        actor=cause.actor,
        correlation_id=correlation(cause),
        payload=payload,
    )


def rejection_notice(cause: ItemEvent, to: Actor, item: NoticeItem, reason: str) -> RejectionNotice:
    """`RejectionNotice` to `to` about a rejection by `cause.actor`."""
    return RejectionNotice(
        event_id=derived_id(cause, "rejection-notice"),
        occurred_at=cause.occurred_at,
        company_id=cause.company_id,
        item=cause.item,
        actor=cause.actor,
        correlation_id=correlation(cause),
        payload=RejectionNoticePayload(
            to=to.email, item=item, reason=reason, rejected_by=cause.actor
        ),
    )


__all__ = [
    "correlation",
    "derived_id",
    "export_id",
    "export_requested",
    "rejection_notice",
    "status_changed",
]
