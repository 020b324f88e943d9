"""The projection: status changes land in `items` and `item_history`; the CLI reads them."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import pytest

from consumers.dev import samples as se
from consumers.dev.stack import Stack
from pipeline.settings import Settings
from tests.support.db import rows
from tests.support.kafka import publish
from tests.support.processes import cli, env_for, start_worker, stop, worker
from tests.support.waiting import eventually
from topics.specs import DECISIONS, DIRECTORY, STATUS, SUBMISSIONS

pytestmark = pytest.mark.timeout(240)


def _wait_row(settings: Settings, item_id: str, status: str, timeout_s: float = 60) -> None:
    eventually(
        lambda: rows(
            settings, "SELECT 1 FROM items WHERE item_id = %s AND status = %s", item_id, status
        ),
        timeout=timeout_s,
        message=f"{item_id} never became {status} in items",
    )


def _cli(env: dict[str, str], *args: str) -> str:
    done = cli(env, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_status_changes_reach_the_read_model(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    publish(settings, DIRECTORY, se.company_settings(), se.approver_updated(se.APPROVER))
    env = env_for(stack.env(), tmp_path)
    item = f"sc-{uuid.uuid4().hex[:6]}"
    projection = start_worker("projection", env)
    try:
        with worker("processor", env, tmp_path / "processor.log"):
            publish(settings, SUBMISSIONS, se.commitment_submitted(item))
            _wait_row(settings, item, "ready_to_export")
            listed = [
                json.loads(line)
                for line in _cli(
                    env,
                    "queue",
                    "--company",
                    se.COMPANY,
                    "--view",
                    "ready-to-export",
                    "--json",
                    "--type",
                    "commitment",
                ).splitlines()
            ]
            mine = [row for row in listed if row["item_id"] == item]
            assert mine and mine[0]["title"] == "Concrete foundations"
            assert mine[0]["sent_by"] == se.SENDER["name"] and mine[0]["amount"] == "250000.0000"
            table = _cli(env, "queue", "--company", se.COMPANY, "--view", "ready-to-export")
            assert table.splitlines()[0].split() == [
                "item",
                "number",
                "title",
                "amount",
                "project",
                "sent",
                "by",
                "sent",
                "at",
            ]
            assert f"commitment:{item}" in table
            publish(settings, DECISIONS, se.rejected("commitment", item, "Wrong vendor"))
            _wait_row(settings, item, "rejected")
        # an older status change arriving late is kept in history but does not roll back items
        stale = se.envelope(
            "ItemStatusChanged",
            item=("commitment", item),
            at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
            status="ready_to_export",
            submission_version=1,
        )
        publish(settings, STATUS, stale)
        eventually(
            lambda: rows(
                settings, "SELECT 1 FROM item_history WHERE event_id = %s", stale["event_id"]
            ),
            timeout=60,
            message="the stale status change reached item_history",
        )
        assert rows(settings, "SELECT status, reason FROM items WHERE item_id = %s", item) == [
            ("rejected", "Wrong vendor")
        ]
        history = _cli(env, "history", f"{se.COMPANY}:commitment:{item}")
        assert "ready_to_export" in history and "Wrong vendor" in history
        assert history.splitlines()[0].split()[:2] == ["seq", "at"]
        key = f"{se.COMPANY}:commitment:{item}"
        applied = [json.loads(line) for line in _cli(env, "history", key, "--json").splitlines()]
        # the processor's two changes in the order it applied them, then the late unsequenced one
        assert [(r["sequence"], r["status"]) for r in applied] == [
            (None, "ready_to_export"),
            (1, "ready_to_export"),
            (2, "rejected"),
        ]
        assert len(rows(settings, "SELECT 1 FROM item_history WHERE item_id = %s", item)) == 3
    finally:
        stop(projection)
