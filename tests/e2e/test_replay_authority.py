"""`replay` gives the live verdicts on who may act, for decisions before and after a revocation."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumers.dev import samples as se
from consumers.dev.stack import Stack
from pipeline.settings import Settings
from tests.support.db import statuses
from tests.support.events import for_company
from tests.support.kafka import about, isolated, publish, wait_for_events
from tests.support.processes import cli
from tests.support.waiting import eventually
from tests.support.workers import Workers
from topics.specs import DEAD_LETTERS, DECISIONS, DIRECTORY, STATUS, SUBMISSIONS

pytestmark = pytest.mark.timeout(240)

COMPANY = "replay-authority"
BEA = {"user_id": "u-bea", "email": "bea.approver@acme.example", "name": "Bea Approver"}
ACCEPT = {"erp_job_id": "J-9", "job_template": "COMM"}


def ago(minutes: int) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)


def mine(raw: dict[str, object]) -> dict[str, object]:
    return for_company(COMPANY, raw)


@pytest.fixture(scope="module")
def story(
    stack: Stack, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """Bea accepts prj-a, is revoked, then rejects prj-b with a time from before the
    revocation; the processor and the projection ran it, and are stopped."""
    topics = asyncio.run(isolated(settings, "replay-authority"))
    data = tmp_path_factory.mktemp("replay-authority")
    workers = Workers.beside(stack, topics, data)
    granted = mine(se.envelope("ApproverUpdated", actor=se.APPROVER, at=ago(120)))
    granted["payload"] = se.approver_updated(BEA)["payload"]
    publish(topics, DIRECTORY, mine(se.company_settings()), granted)
    try:
        for name in ("processor", "projection"):
            workers.start_worker(name)
        publish(
            topics,
            SUBMISSIONS,
            mine(se.project_submitted("prj-a")),
            mine(se.project_submitted("prj-b")),
        )
        for item in ("prj-a", "prj-b"):
            wait_for_events(topics, STATUS, about(item))
        publish(topics, DECISIONS, mine(se.accepted("project", "prj-a", actor=BEA, **ACCEPT)))
        wait_for_events(
            topics, STATUS, lambda e: about("prj-a")(e) and e.payload.status == "exporting"
        )
        publish(topics, DIRECTORY, mine(se.approver_updated(BEA, privileged=False)))
        backdated = mine(
            se.envelope("ItemRejected", item=("project", "prj-b"), actor=BEA, at=ago(60))
        )
        backdated["payload"] = {"reason": "Wrong customer"}
        publish(topics, DECISIONS, backdated)
        (dead,) = wait_for_events(topics, DEAD_LETTERS, about("prj-b"))
        assert dead.payload.stage == "authorize"
        final = {"prj-a": "exporting", "prj-b": "ready_to_export"}
        eventually(
            lambda: statuses(topics, COMPANY) == final,
            timeout=30,
            message=lambda: f"read model {statuses(topics, COMPANY)}",
        )
        workers.stop_workers()
        yield workers.env()
    finally:
        workers.stop_workers()


def test_replay_gives_the_live_verdicts_before_and_after_a_revocation(
    story: dict[str, str], tmp_path: Path
) -> None:
    report = tmp_path / "report.jsonl"
    done = cli(story, "replay", "--company", COMPANY, "--verify", "--report", str(report))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verify: the read model and erp.status match the replay" in done.stdout
    rows = {
        row["item"].rsplit(":", 1)[-1]: row
        for row in map(json.loads, report.read_text().splitlines())
    }
    accepted, rejected = rows["prj-a"], rows["prj-b"]
    assert (accepted["decision"], accepted["outcome"]) == ("accepted", "applied")
    assert (rejected["decision"], rejected["outcome"]) == ("rejected", "refused")
    assert rejected["refusal"].startswith("authorize: user u-bea may not push to accounting")
    assert (accepted["final_status"], rejected["final_status"]) == ("exporting", "ready_to_export")
