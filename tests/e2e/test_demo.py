"""`erp-pipeline demo --once` tells the story, checked from the topics, ERP and mail drop."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import re
import subprocess
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from consumers.console.app import build_app
from consumers.console.settings import ConsoleSettings
from consumers.console.views import TABS, VIEWS, tab_of
from consumers.dev import samples as se
from consumers.dev.demo import COMPANY
from consumers.dev.screenshot import CHROMIUM
from consumers.dev.stack import Stack
from pipeline.kafka import read_all
from pipeline.settings import Settings
from tests.support.processes import cli
from tests.support.waiting import eventually
from topics import decode
from topics.specs import DEAD_LETTERS, STATUS

pytestmark = pytest.mark.timeout(300)


@dataclass
class DemoRun:
    """One `demo --once` on topics of its own: what it printed, and where it left things."""

    result: subprocess.CompletedProcess[str]
    settings: Settings
    data_dir: Path
    #: The console screenshot it took (None when Chromium is not installed here).
    screenshot: Path | None


@pytest.fixture(scope="module")
def demo(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    prefix = f"{stack.settings.erp_topic_prefix}demo{uuid.uuid4().hex[:6]}."
    tmp_path = tmp_path_factory.mktemp("demo")
    env = {
        **stack.env(),
        "ERP_TOPIC_PREFIX": prefix,
        "DATA_DIR": str(tmp_path),
        "METRICS_PORT": "0",
    }
    env.pop("SMTP_URL", None)
    shot = tmp_path / "ready-to-export.png" if os.path.exists(CHROMIUM) else None
    result = cli(env, "demo", "--once", *(["--screenshot", str(shot)] if shot else []), timeout=280)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    settings = stack.settings.model_copy(update={"erp_topic_prefix": prefix})
    return DemoRun(result, settings, tmp_path, shot)


def final_statuses(settings: Settings) -> dict[str, str]:
    """item key → the last status the demo's items reached on erp.status."""
    statuses = [decode(r.value, STATUS) for r in asyncio.run(read_all(settings, STATUS))]
    return {e.item_key: e.payload.status.value for e in statuses}


def test_demo_plays_every_step_of_the_story(demo: DemoRun) -> None:
    result, settings, tmp_path = demo.result, demo.settings, demo.data_dir
    # Ana decides through the console's API; Vic is refused there on the spot, then by the
    # pipeline when his decision is sent past the console
    assert "Ana signs in to the console at http://127.0.0.1:" in result.stdout
    assert "Vic tries to reject it in the console → 403: user u-vic may not push" in " ".join(
        result.stdout.split()
    )

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
    with psycopg.connect(settings.require_erp_database_url()) as conn:
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
    with psycopg.connect(settings.require_erp_database_url()) as conn:
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
    # the e-mails link to the item's page on the console the demo started
    match = re.search(r"Ana signs in to the console at (http://\S+/) ", shown)
    assert match is not None, result.stdout[-3000:]
    rejected = next(k for k, v in final.items() if v == "rejected").split(":")[2]
    rejection = next(m for m in mails if "Rejection" in str(m["Subject"]))
    text = rejection.get_body(("plain",))
    assert text is not None
    assert f"{match.group(1)}items/commitment/{rejected}" in text.get_content()


def test_the_console_shows_every_view_and_item_page_of_the_demo_company(demo: DemoRun) -> None:
    """Every tab and view, and every item's page, from the read model as the demo leaves it."""
    final = {
        tuple(key.split(":")[1:]): status
        for key, status in final_statuses(demo.settings).items()
        if key.startswith(f"{COMPANY}:")
    }
    assert {kind for kind, _ in final} == {
        "project",
        "commitment",
        "commitment_change_order",
        "prime_contract_change_order",
    }
    console = ConsoleSettings(user_header="X-User", company_header="X-Company")
    app = build_app(demo.settings, console, registry=CollectorRegistry())
    ana = {"X-User": se.APPROVER["user_id"], "X-Company": COMPANY}
    with TestClient(app) as client:
        eventually(
            lambda: client.get("/api/v1/me", headers=ana).status_code == 200,
            timeout=30,
            message="the console never read the demo's directory",
        )
        counts = {
            (t["name"], v["name"]): v["count"]
            for t in client.get("/api/v1/tabs", headers=ana).json()["tabs"]
            for v in t["views"]
        }
        for tab in TABS.values():
            for view in VIEWS.values():
                page = client.get(f"/tabs/{tab.name}/{view.name}", headers=ana)
                assert page.status_code == 200, (tab.name, view.name, page.text[:500])
                listed = client.get(f"/api/v1/tabs/{tab.name}/{view.name}", headers=ana)
                assert listed.status_code == 200, listed.text[:500]
                mine = {
                    (kind, item)
                    for (kind, item), status in final.items()
                    if status == view.status.value and tab_of(kind) == tab
                }
                assert counts[(tab.name, view.name)] >= len(mine)
                for kind, item in mine:
                    assert f'href="/items/{kind}/{item}"' in page.text, (tab.name, view.name, item)
                if view.name == "send-refused" and mine:  # the list shows every reason
                    assert "billing_item_code" in page.text, page.text[-2000:]
        for (kind, item), status in final.items():
            page = client.get(f"/items/{kind}/{item}", headers=ana)
            assert page.status_code == 200, (kind, item, page.text[:500])
            assert f'<td data-testid="status">{status}</td>' in page.text, (kind, item)
            assert "Created by" in page.text, (kind, item)  # the submitted snapshot
            detail = client.get(f"/api/v1/items/{kind}/{item}", headers=ana).json()
            assert detail["history"][-1]["status"] == status, (kind, item, detail["history"])
            if status == "send_refused":
                assert "billing_item_code" in page.text
            if status == "rejected":
                assert detail["item"]["reason"] and detail["item"]["reason"] in page.text
            if status == "synced":
                assert detail["item"]["erp_reference"] in page.text
        # Vic's decision, refused by the pipeline, shows on the item he tried to reject
        refused = [
            (kind, item)
            for (kind, item) in final
            if client.get(f"/api/v1/items/{kind}/{item}", headers=ana).json()["refusals"]
        ]
        assert len(refused) == 1
        page = client.get(f"/items/{refused[0][0]}/{refused[0][1]}", headers=ana).text
        assert "Refused attempts" in page and "authorize" in page


def test_the_demo_takes_the_readme_screenshot(demo: DemoRun) -> None:
    if demo.screenshot is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    data = demo.screenshot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) < 150_000
    assert f"Screenshot of Ready to Export: {demo.screenshot}" in " ".join(
        demo.result.stdout.split()
    )
