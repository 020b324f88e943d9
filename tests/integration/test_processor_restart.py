"""The daily summary across restarts, and a processor killed mid-flight losing nothing."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest

from consumers.dev import samples as se
from consumers.dev.stack import Stack
from pipeline.settings import Settings
from tests.support.events import for_company
from tests.support.kafka import about, decoded, publish, wait_for_events
from tests.support.processes import env_for, stop, worker
from topics.specs import DECISIONS, DIRECTORY, EXPORTS, NOTIFICATIONS, STATUS, SUBMISSIONS

pytestmark = pytest.mark.timeout(240)


def _midday_zone() -> str:
    """A fixed-offset zone where it is about noon now, so the local date cannot turn mid-test."""
    offset = 12 - dt.datetime.now(dt.UTC).hour
    return "UTC" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


def _person(name: str, company: str) -> dict[str, str]:
    return {"user_id": f"u-{name}", "email": f"{name}@{company}.example", "name": name.title()}


def _summaries(settings: Settings, company: str) -> list[str]:
    return sorted(
        e.payload.to
        for e in decoded(settings, NOTIFICATIONS)
        if e.event_type == "DailySummary" and e.company_id == company
    )


def _later_tick(settings: Settings, zone: str) -> None:
    """Wait until the running processor has finished a summary tick that began after now.

    A fresh company with one waiting item gets its summary from the first tick that sees it;
    ticks run whole, so once that summary is out, any second summary an earlier tick might
    have sent would already be on the topic. This proves an absence without a timed wait.
    """
    probe = f"probe-{uuid.uuid4().hex[:6]}"
    person = _person("pia", probe)
    publish(
        settings,
        DIRECTORY,
        for_company(probe, se.company_settings(timezone=zone, daily_summary_hour=0)),
        se.approver_updated(person, company=probe),
    )
    publish(settings, SUBMISSIONS, for_company(probe, se.project_submitted(f"prj-{probe}")))
    wait_for_events(
        settings,
        NOTIFICATIONS,
        lambda e: e.event_type == "DailySummary" and e.company_id == probe,
    )
    # a second tick after the probe's: the busy company was looked at again meanwhile
    probe2 = f"probe-{uuid.uuid4().hex[:6]}"
    publish(
        settings,
        DIRECTORY,
        for_company(probe2, se.company_settings(timezone=zone, daily_summary_hour=0)),
        se.approver_updated(_person("pia", probe2), company=probe2),
    )
    publish(settings, SUBMISSIONS, for_company(probe2, se.project_submitted(f"prj-{probe2}")))
    wait_for_events(
        settings,
        NOTIFICATIONS,
        lambda e: e.event_type == "DailySummary" and e.company_id == probe2,
    )


def test_daily_summary_once_per_approver_per_day(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    busy, idle = f"sum-{uuid.uuid4().hex[:6]}", f"idle-{uuid.uuid4().hex[:6]}"
    zone = _midday_zone()
    alice, bob, carl = _person("alice", busy), _person("bob", busy), _person("carl", idle)
    publish(
        settings,
        DIRECTORY,
        for_company(busy, se.company_settings(timezone=zone, daily_summary_hour=0)),
        for_company(idle, se.company_settings(timezone=zone, daily_summary_hour=0)),
        se.approver_updated(alice, company=busy),
        se.approver_updated(bob, company=busy, digest_subscribed=False),
        se.approver_updated(carl, company=idle),
    )
    env = env_for(stack.env(), tmp_path)
    item = f"prj-{uuid.uuid4().hex[:6]}"
    with worker("processor", env, tmp_path / "p1.log"):
        publish(settings, SUBMISSIONS, for_company(busy, se.project_submitted(item)))
        (summary,) = wait_for_events(
            settings,
            NOTIFICATIONS,
            lambda e: e.event_type == "DailySummary" and e.company_id == busy,
        )
        assert summary.payload.to == alice["email"]
        assert [line.item.id for line in summary.payload.items] == [item]
        _later_tick(settings, zone)
    with worker("processor", env, tmp_path / "p2.log"):
        other = f"prj-{uuid.uuid4().hex[:6]}"
        publish(settings, SUBMISSIONS, for_company(busy, se.project_submitted(other)))
        wait_for_events(settings, STATUS, about(other))
        _later_tick(settings, zone)
    assert _summaries(settings, busy) == [alice["email"]]
    assert _summaries(settings, idle) == []


def test_sigkill_loses_no_state(stack: Stack, settings: Settings, tmp_path: Path) -> None:
    publish(settings, DIRECTORY, se.company_settings(), se.approver_updated(se.APPROVER))
    env = env_for(stack.env(), tmp_path)
    item = f"prj-{uuid.uuid4().hex[:6]}"
    with worker("processor", env, tmp_path / "p1.log") as first:
        publish(settings, SUBMISSIONS, se.project_submitted(item))
        wait_for_events(settings, STATUS, about(item))
        stop(first, kill=True)
    # the memory store starts empty: the item's state can only come from the table changelog
    with worker("processor", {**env, "PROCESSOR_STORE": "memory"}, tmp_path / "p2.log"):
        # the approver answers the version erp.status showed: should the killed worker's last
        # record be redelivered after this decision, the decision waits for it
        publish(
            settings,
            DECISIONS,
            se.accepted("project", item, erp_job_id="J-9", job_template="T", submission_version=1),
        )
        wait_for_events(settings, EXPORTS, about(item))
        publish(settings, SUBMISSIONS, se.retrieved("project", item))
        wait_for_events(
            settings, STATUS, lambda e: about(item)(e) and e.payload.status == "exporting"
        )
    # a record redelivered after the kill may be published again, under the same event_id
    statuses = {e.event_id: e.payload for e in decoded(settings, STATUS) if about(item)(e)}
    assert [(s.status, s.submission_version) for s in statuses.values()] == [
        ("ready_to_export", 1),
        ("exporting", 1),
    ]
    assert len({e.event_id for e in decoded(settings, EXPORTS) if about(item)(e)}) == 1
