"""The processor on the real broker: who may act is judged in log order, and named by the
directory."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from consumers.dev import samples as se
from consumers.dev.stack import Stack
from pipeline.settings import Settings
from tests.support.kafka import about, publish, wait_for_events
from tests.support.processes import env_for, worker
from topics.specs import DEAD_LETTERS, DECISIONS, DIRECTORY, NOTIFICATIONS, STATUS, SUBMISSIONS

pytestmark = pytest.mark.timeout(240)

ACCEPT = {"erp_job_id": "J-1", "job_template": "Commercial"}


@pytest.fixture(scope="module")
def running(
    stack: Stack, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """The demo company's directory published, and one processor running."""
    publish(settings, DIRECTORY, se.company_settings(), se.approver_updated(se.APPROVER))
    data = tmp_path_factory.mktemp("processor")
    with worker("processor", env_for(stack.env(), data), data / "processor.log"):
        yield settings


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def ago(minutes: int) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)


def status_of(settings: Settings, item_id: str, status: str) -> Any:
    (found,) = wait_for_events(
        settings, STATUS, lambda e: about(item_id)(e) and e.payload.status == status
    )
    return found


def refusal_of(settings: Settings, raw: dict[str, Any]) -> Any:
    (dead,) = wait_for_events(
        settings, DEAD_LETTERS, lambda e: e.payload.refused_event_id == raw["event_id"]
    )
    return dead


def submitted(settings: Settings) -> str:
    item = new_id("prj")
    publish(settings, SUBMISSIONS, se.project_submitted(item))
    status_of(settings, item, "ready_to_export")
    return item


def test_a_decision_backdated_before_a_revocation_is_refused(running: Settings) -> None:
    person = {"user_id": new_id("u"), "email": "bea.approver@acme.example", "name": "Bea"}
    granted = se.envelope("ApproverUpdated", actor=se.APPROVER, at=ago(120))
    granted["payload"] = se.approver_updated(person)["payload"]
    publish(running, DIRECTORY, granted)
    item = submitted(running)
    publish(running, DIRECTORY, se.approver_updated(person, privileged=False))
    # stamped an hour before the revocation it follows in the log
    backdated = se.envelope(
        "ItemAccepted", item=("project", item), actor=person, at=ago(60), **ACCEPT
    )
    publish(running, DECISIONS, backdated)
    dead = refusal_of(running, backdated)
    assert dead.payload.stage == "authorize" and "may not push" in dead.payload.error
    # the item is still waiting: an entitled approver's accept is the next thing it takes
    publish(running, DECISIONS, se.accepted("project", item, **ACCEPT))
    assert status_of(running, item, "exporting").payload.previous_status == "ready_to_export"


def test_a_retrieve_by_another_user_is_refused_and_the_item_stays(running: Settings) -> None:
    item = submitted(running)
    stranger = {"user_id": new_id("u"), "email": "zed@acme.example", "name": "Zed"}
    retrieve = se.retrieved("project", item, actor=stranger)
    publish(running, SUBMISSIONS, retrieve)
    dead = refusal_of(running, retrieve)
    assert dead.payload.stage == "authorize" and "may not retrieve" in dead.payload.error
    # still ready to export: its sender may retrieve it now
    publish(running, SUBMISSIONS, se.retrieved("project", item))
    assert status_of(running, item, "retrieved").payload.previous_status == "ready_to_export"


def test_the_decider_is_named_by_the_directory_not_by_the_event(running: Settings) -> None:
    item = new_id("sc")
    publish(running, SUBMISSIONS, se.commitment_submitted(item))
    status_of(running, item, "ready_to_export")
    claimed = {**se.APPROVER, "email": "not.ana@elsewhere.example", "name": "Not Ana"}
    publish(running, DECISIONS, se.rejected("commitment", item, "On hold", actor=claimed))
    rejected = status_of(running, item, "rejected")
    assert (rejected.actor.email, rejected.actor.name) == (se.APPROVER["email"], "Ana Approver")
    (notice,) = wait_for_events(running, NOTIFICATIONS, about(item, "RejectionNotice"))
    by = notice.payload.rejected_by
    assert (by.email, by.name) == (se.APPROVER["email"], "Ana Approver")
