"""Local table state of a clean run: kept for its own changelog, rebuilt for another one."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from consumers.dev import samples as se
from consumers.dev.services import EmbeddedBroker
from consumers.dev.stack import Stack
from pipeline.kafka import create_topics
from pipeline.processor.config import state_dir
from pipeline.processor.local_state import CLEAN_SHUTDOWN_MARK
from pipeline.settings import Settings
from tests.support.kafka import about, decoded, isolated, publish
from tests.support.processes import env_for, worker
from tests.support.waiting import eventually
from topics.specs import DECISIONS, DIRECTORY, STATUS, SUBMISSIONS

pytestmark = pytest.mark.timeout(300)


def _status(
    settings: Settings, item: str, process: subprocess.Popen[Any], wanted: str
) -> list[Any]:
    """The item's status changes once one reaches `wanted`; fails at once if the worker exits."""

    def reached() -> list[Any] | None:
        if process.poll() is not None:
            raise AssertionError(f"the processor exited with code {process.returncode}")
        changes = [e for e in decoded(settings, STATUS) if about(item)(e)]
        return changes if any(e.payload.status == wanted for e in changes) else None

    return eventually(reached, timeout=120, interval=0.5, message=f"{item} never {wanted}")


def test_local_state_is_kept_for_its_changelog_and_rebuilt_on_a_fresh_broker(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    first = asyncio.run(isolated(settings, f"local{uuid.uuid4().hex[:6]}"))
    env = env_for(stack.env(), tmp_path / "data", ERP_TOPIC_PREFIX=first.erp_topic_prefix)
    local = state_dir(Settings(data_dir=str(tmp_path / "data")))
    publish(first, DIRECTORY, se.company_settings(), se.approver_updated(se.APPROVER))
    with worker("processor", env, tmp_path / "a1.log") as process:
        publish(first, SUBMISSIONS, se.project_submitted("prj-a"))
        _status(first, "prj-a", process, "ready_to_export")
    assert process.returncode == 0 and (local / CLEAN_SHUTDOWN_MARK).exists()

    # the same broker: the local state is the changelog's, kept, and the item's state is there
    with worker("processor", env, tmp_path / "a2.log") as process:
        publish(
            first, DECISIONS, se.accepted("project", "prj-a", erp_job_id="J-1", job_template="T")
        )
        _status(first, "prj-a", process, "exporting")
    assert "matches the changelog; kept" in (tmp_path / "a2.log").read_text()
    assert process.returncode == 0 and (local / CLEAN_SHUTDOWN_MARK).exists()

    # a fresh broker knows nothing of it: faust's consistency check used to stop the worker
    broker = EmbeddedBroker(log_path=tmp_path / "broker-b.log")
    try:
        second = first.model_copy(update={"kafka_bootstrap_servers": broker.start()})
        asyncio.run(create_topics(second))
        publish(second, DIRECTORY, se.company_settings(), se.approver_updated(se.APPROVER))
        env_b = {**env, "KAFKA_BOOTSTRAP_SERVERS": second.require_bootstrap()}
        with worker("processor", env_b, tmp_path / "b.log") as process:
            publish(second, SUBMISSIONS, se.project_submitted("prj-b"))
            _status(second, "prj-b", process, "ready_to_export")
        assert "not the changelog's" in (tmp_path / "b.log").read_text()
        assert [e.item.id for e in decoded(second, STATUS)] == ["prj-b"]
    finally:
        broker.stop()
