"""`erp-pipeline run console` as a process: its port, the dev sign-in, CSRF, metrics, SIGTERM."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx2
import pytest

from consumers.dev import samples as se
from consumers.dev.services import free_port
from pipeline.settings import Settings
from tests.support.events import for_company
from tests.support.kafka import isolated, publish
from tests.support.processes import cli, env_for, worker
from tests.support.waiting import eventually
from topics.specs import DIRECTORY

pytestmark = pytest.mark.timeout(180)

COMPANY = "console-worker"


def _get(client: httpx2.Client, path: str) -> httpx2.Response | None:
    try:
        return client.get(path)
    except httpx2.TransportError:
        return None


def test_the_console_signs_in_a_directory_user_and_checks_csrf(
    settings: Settings, worker_env: dict[str, str], tmp_path: Path
) -> None:
    mine = asyncio.run(isolated(settings, "consolew"))
    publish(
        mine,
        DIRECTORY,
        for_company(COMPANY, se.approver_updated(se.APPROVER)),
        for_company(COMPANY, se.approver_updated(se.VIEWER, privileged=False)),
    )
    port = free_port()
    env = env_for(
        {**worker_env, "ERP_TOPIC_PREFIX": mine.erp_topic_prefix},
        tmp_path / "data",
        CONSOLE_PORT=str(port),
        CONSOLE_DEV_SIGNIN="true",
    )
    with (
        worker("console", env) as process,
        httpx2.Client(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        signin = eventually(
            lambda: (
                (r := _get(client, "/signin")) is not None and se.APPROVER["name"] in r.text and r
            ),
            timeout=60,
            message="the console never listed the directory's users on /signin",
        )
        assert signin.status_code == 200
        assert client.get("/api/v1/tabs").status_code == 401
        answer = client.post("/signin", data={"company_id": COMPANY, "user_id": "u-ana"})
        assert answer.status_code == 303
        me = client.get("/api/v1/me").json()
        assert me["company_id"] == COMPANY and me["may_decide"] is True
        body = {"submission_version": 1, "reason": "no"}
        without = client.post("/api/v1/items/commitment/sc-1/reject", json=body)
        assert without.status_code == 403 and without.json()["detail"] == (
            "missing or wrong CSRF token"
        )
        headers = {"X-CSRF-Token": me["csrf_token"]}
        unknown = client.post("/api/v1/items/commitment/sc-1/reject", json=body, headers=headers)
        assert unknown.status_code == 404 and unknown.json()["outcome"] == "not_found"
        metrics = client.get("/metrics").text
        assert 'erp_pipeline_console_requests_total{method="POST"' in metrics
        assert process.poll() is None
    assert process.returncode == 0


def test_a_console_whose_port_is_taken_exits_with_a_one_line_error(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        env = env_for(worker_env, tmp_path / "data", CONSOLE_PORT=str(port))
        result = cli(env, "run", "console", timeout=90)
    assert result.returncode == 1, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert errors == [
        f"Error: cannot serve the console on CONSOLE_HOST=127.0.0.1 CONSOLE_PORT={port}"
        " (Address already in use)"
    ], result.stderr[-2000:]
