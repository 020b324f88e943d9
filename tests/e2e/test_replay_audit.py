"""`replay` after a scripted run of the live workers: report, --verify, --from, no effects."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from consumers.dev import samples as se
from consumers.dev.mailsink import MailSink
from consumers.dev.stack import Stack
from consumers.replay.read import ReplayOptions, replay
from pipeline.settings import Settings
from tests.support.db import statuses
from tests.support.events import for_company
from tests.support.kafka import about, end_offsets, isolated, publish, wait_for_events
from tests.support.processes import cli
from tests.support.waiting import eventually
from tests.support.workers import Workers
from topics import ALL_TOPICS
from topics.specs import DEAD_LETTERS, DECISIONS, DIRECTORY, STATUS, SUBMISSIONS

pytestmark = pytest.mark.timeout(240)

COMPANY = "replay-audit"
PROJECT = ("project", "prj-100")


@dataclass
class Story:
    """What the scripted run left behind: its settings, environment, mail sink and midpoint."""

    settings: Settings
    env: dict[str, str]
    sink: MailSink
    midpoint: dt.datetime


def _c(item_id: str) -> tuple[str, str]:
    return ("commitment", item_id)


def _status(settings: Settings, *wanted: tuple[str, str]) -> None:
    for item_id, status in wanted:
        wait_for_events(
            settings,
            STATUS,
            lambda e, i=item_id, s=status: about(i)(e) and e.payload.status == s,
        )


@pytest.fixture(scope="module")
def story(
    stack: Stack, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Story]:
    """Accepts, rejects, a retrieve, a re-send, a failed export and its retry, refusals."""
    mine = asyncio.run(isolated(settings, "replay"))
    sink = MailSink(tmp_path_factory.mktemp("maildrop")).start()
    data = tmp_path_factory.mktemp("replay-data")
    workers = Workers.beside(stack, mine, data, SMTP_URL=sink.url)
    env = workers.env()
    try:
        assert cli(env, "erp", "seed", "--company", COMPANY).returncode == 0
        publish(
            mine,
            DIRECTORY,
            for_company(COMPANY, se.company_settings()),
            for_company(COMPANY, se.approver_updated(se.APPROVER)),
            for_company(COMPANY, se.approver_updated(se.VIEWER, privileged=False)),
        )
        for name in ("processor", "projection", "exporter", "notifier"):
            workers.start_worker(name)
        submit = [
            for_company(COMPANY, se.project_submitted("prj-100")),
            for_company(COMPANY, se.commitment_submitted("sc-1", number="SC-R1")),
            for_company(COMPANY, se.commitment_submitted("sc-3", number="SC-R3")),
        ]
        publish(mine, SUBMISSIONS, *submit)
        _status(
            mine,
            ("prj-100", "ready_to_export"),
            ("sc-1", "ready_to_export"),
            ("sc-3", "ready_to_export"),
        )
        publish(mine, SUBMISSIONS, for_company(COMPANY, se.retrieved(*_c("sc-3"))))
        publish(
            mine,
            DECISIONS,
            for_company(COMPANY, se.accepted(*PROJECT, erp_job_id="RA-100", job_template="COMM")),
            for_company(COMPANY, se.rejected(*_c("sc-1"), "Wrong vendor")),
        )
        _status(mine, ("prj-100", "synced"), ("sc-1", "rejected"), ("sc-3", "retrieved"))
        midpoint = dt.datetime.now(dt.UTC)

        publish(
            mine,
            SUBMISSIONS,
            for_company(COMPANY, se.commitment_submitted("sc-1", number="SC-R1")),
            for_company(
                COMPANY, se.commitment_submitted("sc-2", number="SC-R2", erp_vendor_id="V7777")
            ),
            for_company(COMPANY, se.commitment_submitted("sc-4", number="SC-R4")),
            for_company(
                COMPANY, se.commitment_submitted("sc-5", number="SC-R5", erp_vendor_id=None)
            ),
        )
        _status(
            mine, ("sc-2", "ready_to_export"), ("sc-4", "ready_to_export"), ("sc-5", "send_refused")
        )
        wait_for_events(
            mine, STATUS, lambda e: about("sc-1")(e) and e.payload.submission_version == 2
        )
        publish(
            mine,
            DECISIONS,
            for_company(COMPANY, se.accepted(*_c("sc-1"), submission_version=2)),
            for_company(COMPANY, se.accepted(*_c("sc-2"))),
            for_company(COMPANY, se.accepted(*_c("sc-4"), actor=se.VIEWER)),
        )
        _status(mine, ("sc-1", "synced"), ("sc-2", "failed_to_export"))
        wait_for_events(mine, DEAD_LETTERS, about("sc-4"))
        added = cli(env, "erp", "add-vendor", "V7777", "Travis Rebar", "--company", COMPANY)
        assert added.returncode == 0, added.stderr
        retry = se.envelope("ExportRetryRequested", item=_c("sc-2"), actor=se.APPROVER)
        publish(mine, DECISIONS, for_company(COMPANY, retry))
        _status(mine, ("sc-2", "synced"))
        final = {
            "prj-100": "synced",
            "sc-1": "synced",
            "sc-2": "synced",
            "sc-3": "retrieved",
            "sc-4": "ready_to_export",
            "sc-5": "send_refused",
        }
        eventually(
            lambda: statuses(mine, COMPANY) == final,
            timeout=30,
            message=lambda: f"read model {statuses(mine, COMPANY)}",
        )
        eventually(  # the live run mailed the rejection of sc-1
            sink.messages, timeout=30, message="the rejection e-mail never arrived"
        )
        workers.stop_workers()
        yield Story(mine, env, sink, midpoint)
    finally:
        workers.stop_workers()
        sink.stop()


def _report(story: Story, path: Path, *args: str) -> bytes:
    done = cli(story.env, "replay", "--company", COMPANY, "--report", str(path), *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return path.read_bytes()


def _decisions(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            r["item"].rsplit(":", 1)[-1],
            r["decision"],
            r["decided_by"],
            r["outcome"],
            r["submission_version"],
            r["erp_reference"],
            bool(r["export_error"]),
            r["final_status"],
        )
        for r in rows
    ]


ANA, PAT, VIC = se.APPROVER["email"], se.SENDER["email"], se.VIEWER["email"]
#: Report order: by item key (company:type:id), then decision time.
EXPECTED = [
    ("sc-1", "rejected", ANA, "applied", 1, "", False, "synced"),
    ("sc-1", "accepted", ANA, "applied", 2, "SC-R1", False, "synced"),
    ("sc-2", "accepted", ANA, "applied", 1, "", True, "synced"),
    ("sc-2", "export_retry", ANA, "applied", 1, "SC-R2", False, "synced"),
    ("sc-3", "retrieved", PAT, "applied", 1, "", False, "retrieved"),
    ("sc-4", "accepted", VIC, "refused", 1, "", False, "ready_to_export"),
    ("prj-100", "accepted", ANA, "applied", 1, "RA-100", False, "synced"),
]


def test_replay_verifies_and_reports_every_decision_without_side_effects(
    story: Story, tmp_path: Path
) -> None:
    before = {spec.name: asyncio.run(end_offsets(story.settings, spec)) for spec in ALL_TOPICS}
    mails = len(story.sink.messages())
    done = cli(
        story.env, "replay", "--company", COMPANY, "--verify", "--report", str(tmp_path / "a.jsonl")
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verify: the read model and erp.status match the replay" in done.stdout
    assert "replay: read" in done.stderr
    rows = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert _decisions(rows) == EXPECTED
    refused = rows[-2]
    assert refused["refusal"].startswith("authorize: user u-vic")
    assert "synced" in done.stdout and f"{ANA} accepted applied" in done.stdout
    after = {spec.name: asyncio.run(end_offsets(story.settings, spec)) for spec in ALL_TOPICS}
    assert after == before
    assert len(story.sink.messages()) == mails


def test_two_replays_give_byte_identical_reports(story: Story, tmp_path: Path) -> None:
    first = _report(story, tmp_path / "one.csv")
    assert first == _report(story, tmp_path / "two.csv")
    assert first.count(b"\n") == len(EXPECTED) + 1


def test_from_a_midpoint_reports_only_later_decisions(story: Story, tmp_path: Path) -> None:
    report = _report(story, tmp_path / "later.jsonl", "--from", story.midpoint.isoformat())
    rows = [json.loads(line) for line in report.splitlines()]
    assert _decisions(rows) == [
        e
        for e in EXPECTED
        if e[:2] not in {("prj-100", "accepted"), ("sc-1", "rejected"), ("sc-3", "retrieved")}
    ]


def test_verify_names_a_tampered_item(story: Story) -> None:
    url = story.settings.require_database_url()
    tamper = b"UPDATE items SET status = %s WHERE company_id = %s AND item_id = 'sc-3'"
    with psycopg.connect(url) as conn:
        conn.execute(tamper, ("synced", COMPANY))
    try:
        done = cli(story.env, "replay", "--company", COMPANY, "--verify", "--quiet")
        assert done.returncode == 1
        differences = [line for line in done.stdout.splitlines() if line.startswith("DIFFERENCE")]
        assert len(differences) == 1 and f"{COMPANY}:commitment:sc-3" in differences[0]
        assert "read model has status=synced" in differences[0]
    finally:
        with psycopg.connect(url) as conn:
            conn.execute(tamper, ("retrieved", COMPANY))


def test_to_a_midpoint_rebuilds_the_state_of_then(story: Story, tmp_path: Path) -> None:
    report = _report(story, tmp_path / "early.jsonl", "--to", story.midpoint.isoformat())
    rows = [json.loads(line) for line in report.splitlines()]
    assert [(r["item"].rsplit(":", 1)[-1], r["decision"], r["final_status"]) for r in rows] == [
        ("sc-1", "rejected", "rejected"),
        ("sc-3", "retrieved", "retrieved"),
        ("prj-100", "accepted", "synced"),
    ]


def test_an_interrupted_replay_is_partial_and_a_full_one_is_counted(story: Story) -> None:
    stop = asyncio.Event()
    stop.set()
    interrupted = asyncio.run(replay(story.settings, ReplayOptions(company=COMPANY), stop))
    assert interrupted.partial and interrupted.rebuilt.rows == []
    whole = asyncio.run(replay(story.settings, ReplayOptions()))
    assert not whole.partial and whole.records >= whole.rebuilt.events > 0
    assert len(whole.rebuilt.states) == 6


def test_one_item_is_replayed_and_verified_alone(story: Story, tmp_path: Path) -> None:
    item = f"{COMPANY}:commitment:sc-2"
    report = _report(story, tmp_path / "one.jsonl", "--item", item, "--verify")
    rows = [json.loads(line) for line in report.splitlines()]
    assert _decisions(rows) == [e for e in EXPECTED if e[0] == "sc-2"]
