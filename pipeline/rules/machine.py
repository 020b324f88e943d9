"""The approval state machine: the reaction table and the pure function applying one event."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from pipeline.rules import derive, handlers
from pipeline.rules.directory import Directory
from pipeline.rules.refusals import refusal
from pipeline.rules.state import Incoming, ItemState
from topics.events import (
    Envelope,
    ExportAttemptFailed,
    ExportRetryRequested,
    ItemAccepted,
    ItemEvent,
    ItemRejected,
)
from topics.payloads import ItemStatus, RefusalStage


class Trigger(StrEnum):
    """What happened to an item, as the table sees it."""

    SUBMITTED = "ItemSubmitted"
    RETRIEVED = "ItemRetrieved"
    ACCEPTED = "ItemAccepted"
    REJECTED = "ItemRejected"
    RETRY = "ExportRetryRequested"
    EXPORTED = "ItemExported"
    ATTEMPT_FAILED = "ExportAttemptFailed(retryable)"
    EXPORT_FAILED = "ExportAttemptFailed(final)"


class Effect(StrEnum):
    """What a reaction emits, derived from the new state."""

    STATUS = "ItemStatusChanged -> erp.status"
    EXPORT = "ExportRequested -> erp.exports"
    NOTICE = "RejectionNotice -> erp.notifications"


@dataclass(frozen=True)
class Reaction:
    """The next status and the effects of an allowed (status, trigger) pair."""

    next: ItemStatus
    effects: tuple[Effect, ...] = ()


S, T, E = ItemStatus, Trigger, Effect
NEW = None  # an item never submitted
_SENDABLE_FROM = (NEW, S.SEND_REFUSED, S.REJECTED, S.RETRIEVED)

#: The whole workflow: any pair not listed is refused at stage `transition`, changing nothing.
REACTIONS: dict[tuple[ItemStatus | None, Trigger], Reaction] = {
    **{
        (status, T.SUBMITTED): Reaction(S.READY_TO_EXPORT, (E.STATUS,)) for status in _SENDABLE_FROM
    },
    (S.READY_TO_EXPORT, T.RETRIEVED): Reaction(S.RETRIEVED, (E.STATUS,)),
    (S.READY_TO_EXPORT, T.ACCEPTED): Reaction(S.EXPORTING, (E.STATUS, E.EXPORT)),
    (S.READY_TO_EXPORT, T.REJECTED): Reaction(S.REJECTED, (E.STATUS, E.NOTICE)),
    (S.FAILED_TO_EXPORT, T.REJECTED): Reaction(S.REJECTED, (E.STATUS, E.NOTICE)),
    (S.FAILED_TO_EXPORT, T.RETRY): Reaction(S.EXPORTING, (E.STATUS, E.EXPORT)),
    (S.EXPORTING, T.EXPORTED): Reaction(S.SYNCED, (E.STATUS,)),
    (S.EXPORTING, T.ATTEMPT_FAILED): Reaction(S.EXPORTING),  # recorded, nothing announced
    (S.EXPORTING, T.EXPORT_FAILED): Reaction(S.FAILED_TO_EXPORT, (E.STATUS,)),
    # a success the ERP confirmed after its failure was published (the ledger decides): the
    # item is in the ERP, so it is synced, never exported twice
    (S.FAILED_TO_EXPORT, T.EXPORTED): Reaction(S.SYNCED, (E.STATUS,)),
}
DECISIONS = (ItemAccepted, ItemRejected, ExportRetryRequested)


@dataclass
class Outcome:
    """The item's new state (None: nothing to store) and the events to publish, in order."""

    state: ItemState | None
    events: list[Envelope] = field(default_factory=list)
    duplicate: bool = False


def trigger_of(event: ItemEvent) -> Trigger:
    """The table's trigger for an event (an export failure splits on `retryable`)."""
    if isinstance(event, ExportAttemptFailed):
        return T.ATTEMPT_FAILED if event.payload.retryable else T.EXPORT_FAILED
    return Trigger(event.event_type)


HANDLERS: dict[Trigger, handlers.Handler] = {
    T.SUBMITTED: handlers.submitted,
    T.RETRIEVED: handlers.retrieved,
    T.ACCEPTED: handlers.accepted,
    T.REJECTED: handlers.rejected,
    T.RETRY: handlers.retry,
    T.EXPORTED: handlers.export_result,
    T.ATTEMPT_FAILED: handlers.export_result,
    T.EXPORT_FAILED: handlers.export_result,
}


def _effects(
    old: ItemState, change: handlers.Change, event: ItemEvent, reaction: Reaction
) -> list[Envelope]:
    new, sub = change.state, change.state.submission
    emitted: list[Envelope] = []
    for effect in reaction.effects:
        if effect is E.STATUS and new.status is not None:
            emitted.append(
                derive.status_changed(
                    event,
                    new.status,
                    old.status,
                    new.version,
                    submission=sub,
                    reason=change.reason,
                    reasons=list(change.reasons),
                    erp_reference=new.erp_reference if new.status is S.SYNCED else None,
                    sequence=new.sequence,
                )
            )
        elif effect is E.EXPORT and new.export is not None:
            emitted.append(new.export)
        elif effect is E.NOTICE:
            emitted.append(handlers.notice(new, event, change.reason or ""))
    return emitted


def not_allowed(trigger: Trigger, status: ItemStatus | None) -> str:
    """Why the table refuses `trigger` for an item in `status` (None: never submitted)."""
    what = status.value if status else "unknown"
    return f"{trigger.value} is not allowed for an item that is {what}"


def transition(state: ItemState, incoming: Incoming, directory: Directory) -> Outcome:
    """Apply one event through the table (no de-duplication, no authorization, no holding)."""
    event = incoming.event
    trigger = trigger_of(event)
    reaction = REACTIONS.get((state.status, trigger))
    try:
        if reaction is None:
            raise handlers.Refused(RefusalStage.TRANSITION, not_allowed(trigger, state.status))
        change = HANDLERS[trigger](state, event, directory, reaction.next)
    except handlers.Refused as refused:
        dead = refusal(incoming.record, refused.stage, refused.error, event=event)
        return Outcome(state, [dead])
    # each status change takes the item's next sequence: the order it was applied in
    announced = E.STATUS in reaction.effects
    sequence = state.sequence + 1 if announced else state.sequence
    new = change.state.model_copy(update={"updated_at": event.occurred_at, "sequence": sequence})
    change = handlers.Change(new, change.reason, change.reasons)
    return Outcome(new, _effects(state, change, event, reaction))
