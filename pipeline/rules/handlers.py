"""What each allowed reaction does to an item's state: one handler per trigger (pure).

A handler gets the item's state, the event, the directory and the next status the reaction
table (`machine.REACTIONS`) allows, and returns the changed state with what the status change
says about it; it raises `Refused` when the event cannot be applied after all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pipeline.rules import derive
from pipeline.rules.directory import Directory
from pipeline.rules.state import ItemState
from pipeline.rules.validation import accept_fields, send_refusals
from topics.events import (
    Envelope,
    ExportAttemptFailed,
    ItemAccepted,
    ItemEvent,
    ItemExported,
    ItemRejected,
    ItemRetrieved,
    ItemSubmitted,
)
from topics.payloads import ItemStatus, NoticeItem, RefusalStage

S = ItemStatus


class Refused(Exception):
    """The event cannot be applied; the item stays as it was."""

    def __init__(self, stage: RefusalStage, error: str) -> None:
        super().__init__(error)
        self.stage, self.error = stage, error


@dataclass(frozen=True)
class Change:
    """What a handler decided: the updated state and what the status change says about it."""

    state: ItemState
    reason: str | None = None
    reasons: tuple[str, ...] = ()


def submitted(
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


def retrieved(
    state: ItemState, event: ItemEvent, directory: Directory, next_: ItemStatus
) -> Change:
    assert isinstance(event, ItemRetrieved)
    return Change(state.model_copy(update={"status": next_}), reason=event.payload.reason)


def accepted(state: ItemState, event: ItemEvent, directory: Directory, next_: ItemStatus) -> Change:
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


def rejected(state: ItemState, event: ItemEvent, directory: Directory, next_: ItemStatus) -> Change:
    assert isinstance(event, ItemRejected)
    return Change(state.model_copy(update={"status": next_}), reason=event.payload.reason)


def retry(state: ItemState, event: ItemEvent, directory: Directory, next_: ItemStatus) -> Change:
    if state.export is None:
        raise Refused(RefusalStage.TRANSITION, "nothing was exported to retry")
    export = derive.export_requested(
        event,
        state.export.payload,
        attempt=state.export.payload.attempt + 1,
        retried_by=event.actor,
    )
    return Change(state.model_copy(update={"status": next_, "export": export, "last_error": None}))


#: The reason on the status change of a failure the ERP's ledger later showed to be a success.
LATE_SUCCESS = "exported after all: the ERP confirmed the export after its failure was reported"


def export_result(
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
        late = state.status is ItemStatus.FAILED_TO_EXPORT
        return Change(
            state.model_copy(
                update={
                    "status": next_,
                    "erp_reference": event.payload.erp_reference,
                    "last_error": None,
                }
            ),
            reason=LATE_SUCCESS if late else None,
        )
    error = f"{event.payload.error_code}: {event.payload.error_message}"
    return Change(
        state.model_copy(update={"status": next_, "last_error": error}),
        reason=event.payload.error_message,
    )


Handler = Callable[[ItemState, ItemEvent, Directory, ItemStatus], Change]


def notice(state: ItemState, event: ItemEvent, reason: str) -> Envelope:
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
