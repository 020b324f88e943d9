"""Authorization, de-duplication and the submission-version hold/stale rule."""

from __future__ import annotations

from consumers.dev import samples as se
from pipeline.rules.directory import Directory
from tests.support.rules import at, directory, event, run, types
from topics.payloads import ItemStatus

S = ItemStatus
PROJECT = ("project", "prj-100")
ACCEPT = {"erp_job_id": "J-1", "job_template": "T"}


def test_unprivileged_decision_is_refused_at_authorize() -> None:
    state, outcomes = run(
        [
            event(se.project_submitted(), 0),
            event(se.accepted(*PROJECT, actor=se.VIEWER, **ACCEPT), 5),
        ]
    )
    assert types(outcomes[-1]) == ["EventRefused"]
    assert outcomes[-1].events[0].payload.stage == "authorize"
    assert state is not None and state.status is S.READY_TO_EXPORT


def test_unknown_user_is_refused_at_authorize() -> None:
    stranger = {"user_id": "u-zed", "email": "zed@acme.example"}
    _, outcomes = run(
        [event(se.project_submitted(), 0), event(se.rejected(*PROJECT, "no", actor=stranger), 5)]
    )
    assert outcomes[-1].events[0].payload.stage == "authorize"


def test_standard_without_push_privilege_is_refused() -> None:
    d = directory()
    d.apply(
        event(
            se.approver_updated(se.APPROVER),
            -50,
            erp_tool_permission="standard",
            can_push_to_accounting=False,
        )
    )
    _, outcomes = run(
        [event(se.project_submitted(), 0), event(se.accepted(*PROJECT, **ACCEPT), 5)], d
    )
    assert outcomes[-1].events[0].payload.stage == "authorize"


def test_standard_with_push_privilege_may_decide() -> None:
    d = directory()
    d.apply(event(se.approver_updated(se.APPROVER), -50, erp_tool_permission="standard"))
    _, outcomes = run(
        [event(se.project_submitted(), 0), event(se.accepted(*PROJECT, **ACCEPT), 5)], d
    )
    assert types(outcomes[-1]) == ["ItemStatusChanged", "ExportRequested"]


def test_an_approver_history_is_the_same_whatever_order_its_entries_arrive_in() -> None:
    entries = [
        event(se.approver_updated(se.APPROVER), minute, erp_tool_permission=permission)
        for minute, permission in [(0, "admin"), (1, "admin"), (2, "standard"), (3, "admin")]
    ]
    views = []
    for order in ([0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2]):
        d = Directory()
        for index in order:
            d.apply(entries[index])
        views.append(
            [d.approver(se.COMPANY, se.APPROVER["user_id"], at(m)) for m in (-1, 0, 1, 2, 3)]
        )
    assert views[0] == views[1] == views[2]
    assert [v.erp_tool_permission if v else None for v in views[0]] == [
        None,
        "admin",
        "admin",
        "standard",
        "admin",
    ]


def test_duplicate_event_id_is_processed_once() -> None:
    submitted = event(se.project_submitted(), 0)
    state, outcomes = run([submitted, submitted])
    assert outcomes[1].duplicate and outcomes[1].events == []
    assert state is not None and state.version == 1


def test_decision_for_a_future_version_is_held_then_applied() -> None:
    accept = event(se.accepted(*PROJECT, submission_version=1, **ACCEPT), 5)
    state, outcomes = run([accept])
    assert outcomes[0].events == [] and state is not None and len(state.held) == 1
    state, (outcome,) = run([event(se.project_submitted(), 1)], state=state)
    assert types(outcome) == ["ItemStatusChanged", "ItemStatusChanged", "ExportRequested"]
    assert state is not None and state.status is S.EXPORTING and state.held == ()


def test_held_decision_applies_after_retrieve_and_resend() -> None:
    state, _ = run(
        [
            event(se.project_submitted(), 0),
            event(se.retrieved(*PROJECT), 1),
            event(se.accepted(*PROJECT, submission_version=2, **ACCEPT), 2),
        ]
    )
    assert state is not None and len(state.held) == 1
    state, _ = run([event(se.project_submitted(), 3)], state=state)
    assert state is not None and state.status is S.EXPORTING and state.version == 2


def test_stale_decision_is_refused() -> None:
    state, outcomes = run(
        [
            event(se.project_submitted(), 0),
            event(se.rejected(*PROJECT, "fix it"), 1),
            event(se.project_submitted(), 2),
            event(se.accepted(*PROJECT, submission_version=1, **ACCEPT), 3),
        ]
    )
    assert outcomes[-1].events[0].payload.stage == "transition"
    assert "stale" in outcomes[-1].events[0].payload.error
    assert state is not None and state.status is S.READY_TO_EXPORT and state.version == 2


def test_held_decision_for_an_older_version_is_refused_on_newer_submission() -> None:
    state, _ = run([event(se.accepted(*PROJECT, submission_version=1, **ACCEPT), 0)])
    state = state.model_copy(update={"version": 0})  # type: ignore[union-attr]
    rejected_v1 = state.held[0]
    state = state.model_copy(update={"version": 1, "status": S.RETRIEVED})
    state, (outcome,) = run([event(se.project_submitted(), 5)], state=state)
    assert types(outcome) == ["ItemStatusChanged", "EventRefused"]
    assert "superseded" in outcome.events[1].payload.error
    assert outcome.events[1].payload.refused_event_id == str(rejected_v1.event.event_id)


def test_second_submission_while_pending_is_refused() -> None:
    state, outcomes = run([event(se.project_submitted(), 0), event(se.project_submitted(), 1)])
    assert outcomes[-1].events[0].payload.stage == "transition"
    assert state is not None and state.version == 1


def test_reject_without_reason_is_refused_by_the_schema() -> None:
    import pytest

    from topics import SchemaError

    with pytest.raises(SchemaError):
        event(se.rejected(*PROJECT, "   "))


def test_a_retry_names_who_asked_for_it_in_the_export_it_requests() -> None:
    """The exporter tells whoever retried about the attempt's failure (#19)."""
    d = directory()
    other = {"user_id": "u-rob", "email": "rob.retrier@acme.example", "name": "Rob Retrier"}
    d.apply(event(se.approver_updated(other), -100))
    item = ("project", "prj-100")
    accepted = se.accepted(*item, erp_job_id="J-1", job_template="T")
    state, outcomes = run([event(se.project_submitted(), 0), event(accepted, 1)], d)
    assert state is not None and state.export is not None
    failed = se.envelope(
        "ExportAttemptFailed",
        item=item,
        export_id=state.export.payload.export_id,
        attempt=1,
        retryable=False,
        error_code="job_exists",
        error_message="job J-1 already exists",
    )
    retry = se.envelope("ExportRetryRequested", item=item, actor=other)
    _, outcomes = run([event(failed, 2), event(retry, 3)], d, state)
    export = next(e for e in outcomes[-1].events if e.event_type == "ExportRequested")
    assert export.payload.retried_by.email == "rob.retrier@acme.example"
    assert export.payload.accepted_by.email == se.APPROVER["email"]
    assert export.payload.attempt == 2
