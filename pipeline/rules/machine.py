"""The approval state machine: the reaction table and the pure function applying one event."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from pipeline.rules import derive
from pipeline.rules.directory import Directory
from pipeline.rules.refusals import refusal
from pipeline.rules.state import Incoming, ItemState
from pipeline.rules.validation import accept_fields, send_refusals
from topics.events import (
    Envelope,
    ExportAttemptFailed,
    ExportRetryRequested,
    ItemAccepted,
    ItemEvent,
    ItemExported,
    ItemRejected,
    ItemRetrieved,
    ItemSubmitted,
)
from topics.payloads import ItemStatus, NoticeItem, RefusalStage


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
}
DECISIONS = (ItemAccepted, ItemRejected, ExportRetryRequested)


class Refused(Exception):
    """The event cannot be applied; the item stays as it was."""

    def __init__(self, stage: RefusalStage, error: str) -> None:
        super().__init__(error)
        self.stage, self.error = stage, error


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


@dataclass(frozen=True)
class Change:
    """What a handler decided: the updated state and what the status change says about it."""

    state: ItemState
    reason: str | None = None
    reasons: tuple[str, ...] = ()


def _submitted(
    state: ItemState, event: ItemEvent, directory: Directory, next_: ItemStatus
) -> Change:
    assert isinstance(event, ItemSubmitted)
    reasons = send_refusals(event, directory.settings(event.company_id, event.occurred_at))
    return Change(
        state.model_copy(
            update={
                "status": S.SEND_REFUSED if reasons else next_,
                "version": state.version + 1,
                "submission": event,
                "export": None,
                "erp_reference": None,
                "last_error": None,
            }
        ),
        reasons=tuple(reasons),
    )


def _retrieved(
    state: ItemState, event: ItemEvent, directory: Directory, next_: ItemStatus
) -> Change:
    assert isinstance(event, ItemRetrieved)
    return Change(state.model_copy(update={"status": next_}), reason=event.payload.reason)


def _accepted(
    state: ItemState, event: ItemEvent, directory: Directory, next_: ItemStatus
) -> Change:
    assert isinstance(event, ItemAccepted) and state.submission is not None
    try:
        fields = accept_fields(event, directory.settings(event.company_id, event.occurred_at))
    except ValueError as exc:
        raise Refused(RefusalStage.BUSINESS_RULE, str(exc)) from None
    sub = state.submission
    export = derive.export_requested(
        event,
        None,
        export_id=derive.export_id(state.key, state.version),
        submission_version=state.version,
        attempt=1,
        created_by=sub.payload.created_by,
        sent_by=sub.actor,
        accepted_by=event.actor,
        number=sub.payload.number,
        title=sub.payload.title,
        amount=sub.payload.amount,
        project=sub.payload.project,
        snapshot=sub.payload.snapshot,
        accept_fields=fields,
    )
    return Change(state.model_copy(update={"status": next_, "export": export, "last_error": None}))


def _rejected(
    state: ItemState, event: ItemEvent, directory: Directory, next_: ItemStatus
) -> Change:
    assert isinstance(event, ItemRejected)
    return Change(state.model_copy(update={"status": next_}), reason=event.payload.reason)


def _retry(state: ItemState, event: ItemEvent, directory: Directory, next_: ItemStatus) -> Change:
    if state.export is None:
        raise Refused(RefusalStage.TRANSITION, "nothing was exported to retry")
    export = derive.export_requested(
        event, state.export.payload, attempt=state.export.payload.attempt + 1
    )
    return Change(state.model_copy(update={"status": next_, "export": export, "last_error": None}))


def _export_result(
    state: ItemState, event: ItemEvent, directory: Directory, next_: ItemStatus
) -> Change:
    assert isinstance(event, ItemExported | ExportAttemptFailed)
    expected = state.export.payload.export_id if state.export is not None else None
    if event.payload.export_id != expected:
        raise Refused(
            RefusalStage.TRANSITION,
            f"result for export {event.payload.export_id}, the item awaits {expected}",
        )
    if isinstance(event, ItemExported):
        return Change(
            state.model_copy(update={"status": next_, "erp_reference": event.payload.erp_reference})
        )
    error = f"{event.payload.error_code}: {event.payload.error_message}"
    return Change(
        state.model_copy(update={"status": next_, "last_error": error}),
        reason=event.payload.error_message,
    )


Handler = Callable[[ItemState, ItemEvent, Directory, ItemStatus], Change]
HANDLERS: dict[Trigger, Handler] = {
    T.SUBMITTED: _submitted,
    T.RETRIEVED: _retrieved,
    T.ACCEPTED: _accepted,
    T.REJECTED: _rejected,
    T.RETRY: _retry,
    T.EXPORTED: _export_result,
    T.ATTEMPT_FAILED: _export_result,
    T.EXPORT_FAILED: _export_result,
}


def _notice(state: ItemState, event: ItemEvent, reason: str) -> Envelope:
    sub = state.submission
    assert sub is not None
    to = sub.payload.created_by if state.item_type in derive.NOTIFY_CREATOR else sub.actor
    item = NoticeItem(
        type=state.item_type,
        id=state.item_id,
        number=sub.payload.number,
        title=sub.payload.title,
        project_name=sub.payload.project.name,
    )
    return derive.rejection_notice(event, to, item, reason)


def _effects(
    old: ItemState, change: Change, event: ItemEvent, reaction: Reaction
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
                )
            )
        elif effect is E.EXPORT and new.export is not None:
            emitted.append(new.export)
        elif effect is E.NOTICE:
            emitted.append(_notice(new, event, change.reason or ""))
    return emitted


def transition(state: ItemState, incoming: Incoming, directory: Directory) -> Outcome:
    """Apply one event through the table (no de-duplication, no authorization, no holding)."""
    event = incoming.event
    trigger = trigger_of(event)
    reaction = REACTIONS.get((state.status, trigger))
    try:
        if reaction is None:
            raise Refused(
                RefusalStage.TRANSITION,
                f"{trigger.value} is not allowed for an item "
                f"that is {state.status.value if state.status else 'unknown'}",
            )
        change = HANDLERS[trigger](state, event, directory, reaction.next)
    except Refused as refused:
        dead = refusal(incoming.record, refused.stage, refused.error, event=event)
        return Outcome(state, [dead])
    new = change.state.model_copy(update={"updated_at": event.occurred_at})
    change = Change(new, change.reason, change.reasons)
    return Outcome(new, _effects(state, change, event, reaction))
