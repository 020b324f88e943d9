"""Order by the pipeline, not by senders' clocks: the live workers and `replay --verify`."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from consumers.dev import samples as se
from consumers.dev.stack import Stack
from pipeline.settings import Settings
from tests.support.db import rows, statuses
from tests.support.events import for_company
from tests.support.kafka import about, isolated, publish, wait_for_events
from tests.support.processes import cli
from tests.support.waiting import eventually
from tests.support.workers import Workers
from topics.specs import DEAD_LETTERS, DECISIONS, DIRECTORY, STATUS, SUBMISSIONS

pytestmark = pytest.mark.timeout(240)

COMPANY = "item-order"


@dataclass
class Live:
    """The processor, projection and exporter running on topics of their own."""

    settings: Settings
    env: dict[str, str]


@pytest.fixture(scope="module")
def live(
    stack: Stack, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    mine = asyncio.run(isolated(settings, "order"))
    data = tmp_path_factory.mktemp("order-data")
    workers = Workers.beside(stack, mine, data)
    env = workers.env()
    try:
        assert cli(env, "erp", "seed", "--company", COMPANY).returncode == 0
        publish(
            mine,
            DIRECTORY,
            for_company(COMPANY, se.company_settings()),
            for_company(COMPANY, se.approver_updated(se.APPROVER)),
        )
        for name in ("processor", "projection", "exporter"):
            workers.start_worker(name)
        yield Live(mine, env)
    finally:
        workers.stop_workers()


def _stamped(event: dict[str, Any], at: dt.datetime) -> dict[str, Any]:
    return {**for_company(COMPANY, event), "occurred_at": at.isoformat().replace("+00:00", "Z")}


def _read_model(live: Live, item_id: str, status: str) -> None:
    eventually(
        lambda: statuses(live.settings, COMPANY).get(item_id) == status,
        timeout=60,
        message=lambda: (
            f"{item_id} is {statuses(live.settings, COMPANY).get(item_id)}, "
            f"not {status}, in the read model"
        ),
    )


def test_an_accept_stamped_ten_minutes_ahead_ends_synced_in_the_read_model(live: Live) -> None:
    """The approver UI's clock runs ten minutes fast: the ERP's answer, stamped by the
    exporter's clock, is still the item's last change."""
    item = f"prj-{uuid.uuid4().hex[:6]}"
    now = dt.datetime.now(dt.UTC)
    publish(live.settings, SUBMISSIONS, _stamped(se.project_submitted(item), now))
    _read_model(live, item, "ready_to_export")
    accept = se.accepted("project", item, erp_job_id=f"AH-{item[-6:]}", job_template="COMM")
    publish(live.settings, DECISIONS, _stamped(accept, now + dt.timedelta(minutes=10)))
    wait_for_events(
        live.settings, STATUS, lambda e: about(item)(e) and e.payload.status == "synced"
    )
    _read_model(live, item, "synced")
    ((reference, sequence, updated_at),) = rows(
        live.settings,
        "SELECT erp_reference, sequence, updated_at FROM items WHERE item_id = %s",
        item,
    )
    assert reference and sequence == 3
    assert updated_at < now + dt.timedelta(minutes=10)  # occurred_at is still what is shown


def test_a_reject_and_its_re_send_stamped_alike_verify_clean(live: Live) -> None:
    """The reject and the re-send that followed it carry the same upstream time: live, the item
    is back in Ready to Export, and the replay agrees (for every item of the company)."""
    item = f"sc-{uuid.uuid4().hex[:6]}"
    now = dt.datetime.now(dt.UTC)
    publish(live.settings, SUBMISSIONS, _stamped(se.commitment_submitted(item), now))
    _read_model(live, item, "ready_to_export")
    publish(
        live.settings, DECISIONS, _stamped(se.rejected("commitment", item, "Wrong vendor"), now)
    )
    _read_model(live, item, "rejected")
    publish(live.settings, SUBMISSIONS, _stamped(se.commitment_submitted(item), now))
    wait_for_events(
        live.settings, STATUS, lambda e: about(item)(e) and e.payload.submission_version == 2
    )
    _read_model(live, item, "ready_to_export")
    done = cli(live.env, "replay", "--company", COMPANY, "--verify")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verify: the read model and erp.status match the replay" in done.stdout


def test_a_reject_replayed_after_more_than_64_other_events_is_not_applied_twice(
    live: Live,
) -> None:
    """The approver UI publishes its reject again (same event id) after 70 refused events and
    the re-send: the new version is not rejected, and the accept of it goes through."""
    item = f"prj-{uuid.uuid4().hex[:6]}"
    publish(live.settings, SUBMISSIONS, for_company(COMPANY, se.project_submitted(item)))
    _read_model(live, item, "ready_to_export")
    reject = for_company(COMPANY, se.rejected("project", item, "Wrong customer"))
    publish(live.settings, DECISIONS, reject)
    _read_model(live, item, "rejected")
    refused = [for_company(COMPANY, se.retrieved("project", item)) for _ in range(70)]
    publish(live.settings, SUBMISSIONS, *refused)
    wait_for_events(live.settings, DEAD_LETTERS, about(item), count=70)
    publish(live.settings, SUBMISSIONS, for_company(COMPANY, se.project_submitted(item)))
    wait_for_events(
        live.settings, STATUS, lambda e: about(item)(e) and e.payload.submission_version == 2
    )
    publish(live.settings, DECISIONS, reject)  # the same record again
    job = {"erp_job_id": f"RR-{item[-6:]}", "job_template": "COMM"}
    accept = se.accepted("project", item, submission_version=2, **job)
    publish(live.settings, DECISIONS, for_company(COMPANY, accept))
    _read_model(live, item, "synced")
    published = wait_for_events(live.settings, STATUS, about(item), count=5)
    changes = sorted({(e.payload.sequence, e.payload.status.value) for e in published})
    assert changes == [
        (1, "ready_to_export"),
        (2, "rejected"),
        (3, "ready_to_export"),
        (4, "exporting"),
        (5, "synced"),
    ]
