"""Every (status, trigger) pair of the reaction table: allowed ones move, others are refused."""

from __future__ import annotations

import pytest

from consumers.dev import samples as se
from pipeline.rules.derive import export_id
from pipeline.rules.machine import REACTIONS, Effect, Trigger
from pipeline.rules.state import ItemState
from tests.support.rules import event, run, types
from topics.payloads import ItemStatus

S = ItemStatus
PROJECT = ("project", "prj-100")
ACCEPT = {"erp_job_id": "J-100", "job_template": "Standard"}


def _export_id(state: ItemState) -> str:
    return export_id(state.key, max(state.version, 1))


def trigger_event(trigger: Trigger, state: ItemState | None, minutes: int = 50) -> object:
    """A project event of the trigger's kind, matching the item's current export."""
    eid = _export_id(state) if state is not None else "none"
    return {
        Trigger.SUBMITTED: lambda: event(se.project_submitted(), minutes),
        Trigger.RETRIEVED: lambda: event(se.retrieved(*PROJECT), minutes),
        Trigger.ACCEPTED: lambda: event(se.accepted(*PROJECT, **ACCEPT), minutes),
        Trigger.REJECTED: lambda: event(se.rejected(*PROJECT, "wrong job"), minutes),
        Trigger.RETRY: lambda: event(
            se.envelope("ExportRetryRequested", item=PROJECT, actor=se.APPROVER), minutes
        ),
        Trigger.EXPORTED: lambda: event(
            se.envelope(
                "ItemExported",
                item=PROJECT,
                export_id=eid,
                erp_reference="JOB-1",
                exported_at="2026-11-21T16:00:00Z",
            ),
            minutes,
        ),
        Trigger.ATTEMPT_FAILED: lambda: event(
            se.envelope(
                "ExportAttemptFailed",
                item=PROJECT,
                export_id=eid,
                attempt=1,
                retryable=True,
                error_code="timeout",
                error_message="ERP timed out",
            ),
            minutes,
        ),
        Trigger.EXPORT_FAILED: lambda: event(
            se.envelope(
                "ExportAttemptFailed",
                item=PROJECT,
                export_id=eid,
                attempt=1,
                retryable=False,
                error_code="E42",
                error_message="Job ID already exists",
            ),
            minutes,
        ),
    }[trigger]()


PATHS: dict[S | None, list[Trigger]] = {
    None: [],
    S.READY_TO_EXPORT: [Trigger.SUBMITTED],
    S.RETRIEVED: [Trigger.SUBMITTED, Trigger.RETRIEVED],
    S.REJECTED: [Trigger.SUBMITTED, Trigger.REJECTED],
    S.EXPORTING: [Trigger.SUBMITTED, Trigger.ACCEPTED],
    S.SYNCED: [Trigger.SUBMITTED, Trigger.ACCEPTED, Trigger.EXPORTED],
    S.FAILED_TO_EXPORT: [Trigger.SUBMITTED, Trigger.ACCEPTED, Trigger.EXPORT_FAILED],
}


def into(status: S | None) -> ItemState | None:
    """A project item brought into `status` through the table."""
    if status is S.SEND_REFUSED:
        state, _ = run([event(se.project_submitted(active=False), 0)])
        return state
    state = None
    for minute, trigger in enumerate(PATHS[status]):
        state, _ = run([trigger_event(trigger, state, minute)], state=state)  # type: ignore[list-item]
    assert (state.status if state else None) is status
    return state


ALL_PAIRS = [(status, trigger) for status in [None, *S] for trigger in Trigger]


@pytest.mark.parametrize(
    ("status", "trigger"), ALL_PAIRS, ids=[f"{s}-{t.name}" for s, t in ALL_PAIRS]
)
def test_every_pair(status: S | None, trigger: Trigger) -> None:
    before = into(status)
    after, (outcome,) = run([trigger_event(trigger, before)], state=before)  # type: ignore[list-item]
    reaction = REACTIONS.get((status, trigger))
    if reaction is None:
        assert types(outcome) == ["EventRefused"]
        assert outcome.events[0].payload.stage == "transition"
        assert (after.status if after else None) is status
        return
    assert after is not None and after.status is reaction.next
    expected = {
        Effect.STATUS: "ItemStatusChanged",
        Effect.EXPORT: "ExportRequested",
        Effect.NOTICE: "RejectionNotice",
    }
    assert types(outcome) == [expected[effect] for effect in reaction.effects]
    for emitted in outcome.events:
        assert emitted.correlation_id  # every output carries the input's correlation


def test_resend_starts_a_new_version() -> None:
    state = into(S.REJECTED)
    state, (outcome,) = run([event(se.project_submitted(), 60)], state=state)
    assert state is not None and state.status is S.READY_TO_EXPORT and state.version == 2
    assert outcome.events[0].payload.submission_version == 2
    assert outcome.events[0].payload.previous_status is S.REJECTED


def test_retry_requests_the_same_export_with_the_next_attempt() -> None:
    failed = into(S.FAILED_TO_EXPORT)
    assert failed is not None and failed.export is not None
    _, (outcome,) = run([trigger_event(Trigger.RETRY, failed)], state=failed)
    export = outcome.events[1]
    assert export.payload.export_id == failed.export.payload.export_id
    assert export.payload.attempt == 2
    assert export.payload.accepted_by.user_id == se.APPROVER["user_id"]


def test_retryable_failure_is_recorded_without_a_status_change() -> None:
    exporting = into(S.EXPORTING)
    state, (outcome,) = run([trigger_event(Trigger.ATTEMPT_FAILED, exporting)], state=exporting)
    assert outcome.events == [] and state is not None
    assert state.status is S.EXPORTING and state.last_error == "timeout: ERP timed out"


def test_final_failure_carries_the_erp_error() -> None:
    state = into(S.FAILED_TO_EXPORT)
    assert state is not None and state.last_error == "E42: Job ID already exists"


def test_result_for_another_export_is_refused() -> None:
    exporting = into(S.EXPORTING)
    wrong = event(
        se.envelope(
            "ItemExported",
            item=PROJECT,
            export_id="other",
            erp_reference="J",
            exported_at="2026-11-21T16:00:00Z",
        ),
        70,
    )
    state, (outcome,) = run([wrong], state=exporting)
    assert types(outcome) == ["EventRefused"] and state is not None
    assert state.status is S.EXPORTING


def test_synced_status_carries_the_erp_reference() -> None:
    exporting = into(S.EXPORTING)
    _, (outcome,) = run([trigger_event(Trigger.EXPORTED, exporting)], state=exporting)
    assert outcome.events[0].payload.erp_reference == "JOB-1"


def test_unknown_item_decision_is_refused_and_nothing_stored() -> None:
    state, (outcome,) = run([trigger_event(Trigger.ACCEPTED, None)])
    assert state is None and types(outcome) == ["EventRefused"]


def test_a_success_confirmed_after_the_failure_was_reported_makes_the_item_synced() -> None:
    """The ERP had the item although its failure was published (a write that succeeded, its
    answer lost): the ledger's late success turns Failed to Export into synced (#19)."""
    failed = into(S.FAILED_TO_EXPORT)
    state, (outcome,) = run([trigger_event(Trigger.EXPORTED, failed)], state=failed)
    assert state is not None and state.status is S.SYNCED and state.last_error is None
    (status,) = outcome.events
    assert status.payload.previous_status is S.FAILED_TO_EXPORT
    assert status.payload.erp_reference == "JOB-1"
    assert status.payload.reason is not None and "exported after all" in status.payload.reason
