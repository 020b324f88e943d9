"""Order by the pipeline: each item's status changes carry its own sequence, readers go by it,
and an upstream input met before is never applied again, however much happened in between."""

from __future__ import annotations

import datetime as dt

from consumers.dev import samples as se
from pipeline.rules.derive import export_id
from pipeline.rules.machine import Outcome
from pipeline.rules.state import DECIDED_LIMIT, SEEN_LIMIT, ItemState
from pipeline.rules.summary import SummaryState
from tests.support.rules import event, run, types
from topics.events import ItemStatusChanged
from topics.payloads import ItemStatus

S = ItemStatus
PROJECT = ("project", "prj-100")
ACCEPT = {"erp_job_id": "J-100", "job_template": "Standard"}


def _failed(version: int, minutes: int, *, retryable: bool = False) -> object:
    return event(
        se.envelope(
            "ExportAttemptFailed",
            item=PROJECT,
            export_id=export_id(f"{se.COMPANY}:project:prj-100", version),
            attempt=1,
            retryable=retryable,
            error_code="E42",
            error_message="Job ID already exists",
        ),
        minutes,
    )


def _statuses(outcomes: list[Outcome]) -> list[ItemStatusChanged]:
    return [e for o in outcomes for e in o.events if isinstance(e, ItemStatusChanged)]


def test_each_status_change_takes_the_next_sequence_of_its_item() -> None:
    state, outcomes = run(
        [
            event(se.project_submitted(), 0),
            event(se.rejected(*PROJECT, "wrong job"), 1),
            event(se.project_submitted(), 2),
            event(se.accepted(*PROJECT, **ACCEPT), 3),
            _failed(2, 4, retryable=True),  # recorded, nothing announced: no sequence taken
            _failed(2, 5),
        ]
    )
    assert [s.payload.sequence for s in _statuses(outcomes)] == [1, 2, 3, 4, 5]
    assert state is not None and state.sequence == 5


def test_the_sequence_is_kept_in_the_stored_state_so_a_restart_continues_it() -> None:
    state, _ = run([event(se.project_submitted(), 0), event(se.rejected(*PROJECT, "no"), 1)])
    assert state is not None
    restored = ItemState.from_stored(state.stored())
    _, outcomes = run([event(se.project_submitted(), 2)], state=restored)
    assert [s.payload.sequence for s in _statuses(outcomes)] == [3]


def test_a_held_decision_released_by_its_submission_comes_right_after_it() -> None:
    accept = event(se.accepted(*PROJECT, submission_version=1, **ACCEPT), 5)
    _, outcomes = run([accept, event(se.project_submitted(), 1)])
    statuses = _statuses(outcomes)
    assert [(s.payload.status, s.payload.sequence) for s in statuses] == [
        (S.READY_TO_EXPORT, 1),
        (S.EXPORTING, 2),
    ]


def _status(status: S, sequence: int | None, minutes: int) -> ItemStatusChanged:
    _, outcomes = run([event(se.project_submitted(), 0)])
    ready = _statuses(outcomes)[0]
    return ready.model_copy(
        update={
            "occurred_at": ready.occurred_at + dt.timedelta(minutes=minutes),
            "payload": ready.payload.model_copy(update={"status": status, "sequence": sequence}),
        }
    )


def test_the_summary_goes_by_sequence_not_by_the_senders_clocks() -> None:
    """The submission's clock runs ten minutes ahead of the approver's: the accept that came
    after it still takes the item out of the list."""
    state = SummaryState()
    state.apply_status(_status(S.READY_TO_EXPORT, 1, 10))
    state.apply_status(_status(S.EXPORTING, 2, 0))
    assert state.waiting(se.COMPANY) == []
    state.apply_status(_status(S.READY_TO_EXPORT, 1, 10))  # a redelivery of the older one
    assert state.waiting(se.COMPANY) == []


def test_the_summary_puts_changes_without_a_sequence_before_every_one_with_it() -> None:
    state = SummaryState()
    state.apply_status(_status(S.EXPORTING, 1, 0))
    state.apply_status(_status(S.READY_TO_EXPORT, None, 60))  # written before sequences
    assert state.waiting(se.COMPANY) == []
    legacy = SummaryState()
    legacy.apply_status(_status(S.EXPORTING, None, 0))
    legacy.apply_status(_status(S.READY_TO_EXPORT, 1, -60))
    assert [w.item_id for w in legacy.waiting(se.COMPANY)] == ["prj-100"]


def _filler(count: int) -> list[object]:
    """`count` retrieves of an item that cannot be retrieved now: each refused, each new."""
    return [event(se.retrieved(*PROJECT), 10) for _ in range(count)]


def test_a_decision_replayed_after_more_than_the_recent_ids_is_not_applied_twice() -> None:
    """An unversioned reject, copied again onto the topic after more than `SEEN_LIMIT` other
    events and a re-send, must not reject the new version."""
    reject = event(se.rejected(*PROJECT, "wrong job"), 1)
    state, outcomes = run(
        [
            event(se.project_submitted(), 0),
            reject,
            *_filler(SEEN_LIMIT + 10),
            event(se.project_submitted(), 20),
            reject,
        ]
    )
    assert outcomes[-1].duplicate and outcomes[-1].events == []
    assert state is not None and state.status is S.READY_TO_EXPORT and state.version == 2


def test_a_refused_decision_replayed_later_is_not_applied_either() -> None:
    """A reject refused while the item was exporting stays refused once the export failed."""
    reject = event(se.rejected(*PROJECT, "wrong job"), 2)
    state, outcomes = run(
        [
            event(se.project_submitted(), 0),
            event(se.accepted(*PROJECT, **ACCEPT), 1),
            reject,
            _failed(1, 3),
            *_filler(SEEN_LIMIT + 10),
            reject,
        ]
    )
    assert types(outcomes[2]) == ["EventRefused"]
    assert outcomes[-1].duplicate
    assert state is not None and state.status is S.FAILED_TO_EXPORT


def test_a_flood_of_refused_inputs_does_not_push_out_what_was_applied() -> None:
    reject = event(se.rejected(*PROJECT, "wrong job"), 1)
    state, _ = run(
        [event(se.project_submitted(), 0), reject, *_filler(600), event(se.project_submitted(), 20)]
    )
    assert state is not None and len(state.refused) == DECIDED_LIMIT  # bounded all the same
    _, (again,) = run([reject], state=state)
    assert again.duplicate


def test_decisions_held_for_a_version_are_applied_in_the_order_they_were_read() -> None:
    """The reject was read first; the accept, stamped earlier by a slower clock, comes after
    it and is refused, as it would be had the submission been there all along."""
    reject = event(se.rejected(*PROJECT, "wrong job"), 10, submission_version=1)
    accept = event(se.accepted(*PROJECT, submission_version=1, **ACCEPT), 5)
    state, outcomes = run([reject, accept, event(se.project_submitted(), 0)])
    assert types(outcomes[-1]) == [
        "ItemStatusChanged",
        "ItemStatusChanged",
        "RejectionNotice",
        "EventRefused",
    ]
    assert state is not None and state.status is S.REJECTED
