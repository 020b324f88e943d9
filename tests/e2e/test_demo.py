"""`erp-pipeline demo --once` tells the story, checked from the topics, ERP and mail drop."""

from __future__ import annotations

import asyncio
import email
import email.policy
import uuid
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from consumers.dev.stack import Stack
from pipeline.kafka import read_all
from tests.support.processes import cli
from topics import decode
from topics.specs import DEAD_LETTERS, STATUS

pytestmark = pytest.mark.timeout(300)


def test_demo_plays_every_step_of_the_story(stack: Stack, tmp_path: Path) -> None:
    prefix = f"{stack.settings.erp_topic_prefix}demo{uuid.uuid4().hex[:6]}."
    env = {
        **stack.env(),
        "ERP_TOPIC_PREFIX": prefix,
        "DATA_DIR": str(tmp_path),
        "METRICS_PORT": "0",
    }
    env.pop("SMTP_URL", None)
    result = cli(env, "demo", "--once", timeout=280)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # Ana decides through the console's API; Vic is refused there on the spot, then by the
    # pipeline when his decision is sent past the console
    assert "Ana signs in to the console at http://127.0.0.1:" in result.stdout
    assert "Vic tries to reject it in the console → 403: user u-vic may not push" in " ".join(
        result.stdout.split()
    )

    settings = stack.settings.model_copy(update={"erp_topic_prefix": prefix})
    statuses = [decode(r.value, STATUS) for r in asyncio.run(read_all(settings, STATUS))]
    final = {e.item_key: e.payload.status.value for e in statuses}
    reached = Counter((e.item.type.value, e.payload.status.value) for e in statuses)
    assert Counter(final.values()) == {
        "synced": 5,
        "rejected": 1,
        "send_refused": 1,
        "ready_to_export": 1,
    }
    assert {k.split(":")[1] for k, v in final.items() if v == "synced"} == {
        "project",
        "commitment",
        "commitment_change_order",
        "prime_contract_change_order",
    }
    assert reached[("commitment", "failed_to_export")] == 1
    refused = next(e for e in statuses if e.payload.status.value == "send_refused")
    assert any("billing_item_code" in reason for reason in refused.payload.reasons)
    dead = [decode(r.value, DEAD_LETTERS) for r in asyncio.run(read_all(settings, DEAD_LETTERS))]
    assert [d.payload.stage.value for d in dead] == ["authorize"]

    project = next(k for k in final if ":project:" in k).split(":")[2]
    with psycopg.connect(stack.settings.require_erp_database_url()) as conn:
        jobs = conn.execute(
            "SELECT job_number, template_code FROM spectrum.jobs WHERE upstream_project_id = %s",
            (project,),
        ).fetchall()
    assert len(jobs) == 1 and jobs[0][1] == "COMM"
    pcco = next(
        k.split(":")[2]
        for k, v in final.items()
        if ":prime_contract_change_order:" in k and v == "synced"
    )
    with psycopg.connect(stack.settings.require_erp_database_url()) as conn:
        lines = conn.execute(
            "SELECT l.prime_line_item FROM spectrum.ar_change_request_lines l"
            " JOIN spectrum.ar_change_requests r USING (company_id, job_number, request_number)"
            " WHERE r.upstream_id = %s ORDER BY l.line_number",
            (pcco,),
        ).fetchall()
    assert lines == [("PL-7",), ("PL-9",)]  # the PCCO reached the ERP with its lines
    # the demo shows them, and the daily summary names the company and each item's project
    shown = " ".join(result.stdout.split())  # as printed, whatever the terminal's width
    assert "with its lines: PL-7 Lobby stone 48,000.00; PL-9" in shown, shown
    assert "of Acme Builders awaiting acceptance" in shown, shown
    assert "(project Riverside Medical Office)" in shown, shown

    mails = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in (tmp_path / "maildrop").glob("*.eml")
    ]
    subjects = Counter((str(m["To"]), str(m["Subject"])) for m in mails)
    assert subjects == {
        ("pat.pm@acme.example", "acme-builders: ERP Commitment Rejection Notification"): 1,
        ("pat.pm@acme.example", "acme-builders: ERP Commitment Export Failed"): 1,
        ("ana.approver@acme.example", "acme-builders: ERP Commitment Export Failed"): 1,
        ("ana.approver@acme.example", "ERP Integrations Daily Summary"): 1,
    }
