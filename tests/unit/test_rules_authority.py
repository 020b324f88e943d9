"""Who may act, judged against the directory in log order; who the derived events name."""

from __future__ import annotations

from consumers.dev import samples as se
from pipeline.rules.directory import Directory
from tests.support.rules import directory, event, run, types
from topics.payloads import ItemStatus

S = ItemStatus
PROJECT = ("project", "prj-100")
ACCEPT = {"erp_job_id": "J-1", "job_template": "T"}
STRANGER = {"user_id": "u-zed", "email": "zed@acme.example", "name": "Zed Stranger"}


def test_a_decision_backdated_before_a_revocation_is_refused() -> None:
    """The revocation was applied first (log order): the decision's own, earlier, timestamp
    does not bring the revoked privilege back."""
    d = Directory()
    d.apply(event(se.approver_updated(se.APPROVER), 0))
    d.apply(event(se.approver_updated(se.APPROVER, privileged=False), 10))
    backdated = event(se.accepted(*PROJECT, **ACCEPT), 5)
    state, outcomes = run([event(se.project_submitted(), 1), backdated], d)
    (dead,) = outcomes[1].events
    assert dead.payload.stage == "authorize" and "may not push" in dead.payload.error
    assert state is not None and state.status is S.READY_TO_EXPORT


def test_the_latest_entry_in_log_order_wins_over_a_later_timestamp() -> None:
    """A grant applied after a revocation counts, even though the revocation's clock ran
    ahead of the grant's."""
    d = Directory()
    d.apply(event(se.approver_updated(se.APPROVER, privileged=False), 30))
    d.apply(event(se.approver_updated(se.APPROVER), 10))
    _, outcomes = run(
        [event(se.project_submitted(), 1), event(se.accepted(*PROJECT, **ACCEPT), 5)], d
    )
    assert types(outcomes[1]) == ["ItemStatusChanged", "ExportRequested"]


def test_a_revocation_after_many_republications_still_counts() -> None:
    d = Directory()
    for minute in range(0, 50):
        d.apply(event(se.approver_updated(se.APPROVER), minute))
    d.apply(event(se.approver_updated(se.APPROVER, privileged=False), 60))
    _, outcomes = run(
        [event(se.project_submitted(), 1), event(se.accepted(*PROJECT, **ACCEPT), 5)], d
    )
    assert outcomes[1].events[0].payload.stage == "authorize"


def test_the_refusal_names_the_directory_version_it_was_judged_against() -> None:
    d = Directory()
    revoked = event(se.approver_updated(se.APPROVER, privileged=False), 0)
    d.apply(revoked)
    _, outcomes = run(
        [event(se.project_submitted(), 1), event(se.accepted(*PROJECT, **ACCEPT), 5)], d
    )
    assert f"directory entry {revoked.event_id}" in outcomes[1].events[0].payload.error


def test_a_held_decision_is_judged_again_when_applied() -> None:
    d = directory()
    held = event(se.accepted(*PROJECT, submission_version=1, **ACCEPT), 5)
    state, (outcome,) = run([held], d)
    assert outcome.events == [] and state is not None and len(state.held) == 1
    d.apply(event(se.approver_updated(se.APPROVER, privileged=False), 6))
    state, (outcome,) = run([event(se.project_submitted(), 7)], d, state=state)
    assert types(outcome) == ["ItemStatusChanged", "EventRefused"]
    dead = outcome.events[1]
    assert dead.payload.stage == "authorize"
    assert dead.payload.refused_event_id == str(held.event_id)
    assert state is not None and state.status is S.READY_TO_EXPORT and state.held == ()


def test_a_retrieve_by_another_user_is_refused_and_the_item_stays() -> None:
    state, outcomes = run(
        [event(se.project_submitted(), 0), event(se.retrieved(*PROJECT, actor=STRANGER), 1)]
    )
    (dead,) = outcomes[1].events
    assert dead.payload.stage == "authorize"
    assert "may not retrieve" in dead.payload.error and se.SENDER["user_id"] in dead.payload.error
    assert state is not None and state.status is S.READY_TO_EXPORT


def test_a_viewer_may_not_retrieve_someone_elses_item() -> None:
    _, outcomes = run(
        [event(se.project_submitted(), 0), event(se.retrieved(*PROJECT, actor=se.VIEWER), 1)]
    )
    assert outcomes[1].events[0].payload.stage == "authorize"


def test_the_sender_or_an_approver_may_retrieve() -> None:
    for who in (se.SENDER, se.APPROVER):
        state, outcomes = run(
            [event(se.project_submitted(), 0), event(se.retrieved(*PROJECT, actor=who), 1)]
        )
        assert types(outcomes[1]) == ["ItemStatusChanged"]
        assert state is not None and state.status is S.RETRIEVED


def test_the_decider_is_named_by_the_directory_not_by_the_event() -> None:
    spoofed = {**se.APPROVER, "email": "someone.else@elsewhere.example", "name": "Not Ana"}
    _, outcomes = run(
        [event(se.project_submitted(), 0), event(se.accepted(*PROJECT, actor=spoofed, **ACCEPT), 1)]
    )
    status, export = outcomes[1].events
    for derived in (status, export):
        assert (derived.actor.email, derived.actor.name) == (se.APPROVER["email"], "Ana Approver")
    assert export.payload.accepted_by.email == se.APPROVER["email"]


def test_the_rejection_notice_names_the_rejecter_as_the_directory_does() -> None:
    spoofed = {**se.APPROVER, "email": "someone.else@elsewhere.example", "name": "Not Ana"}
    _, outcomes = run(
        [
            event(se.commitment_submitted(), 0),
            event(se.rejected("commitment", "sc-200", "no", actor=spoofed), 1),
        ]
    )
    status, notice = outcomes[1].events
    assert status.actor.email == se.APPROVER["email"]
    assert notice.payload.rejected_by.email == se.APPROVER["email"]
    assert notice.payload.rejected_by.name == se.APPROVER["name"]
