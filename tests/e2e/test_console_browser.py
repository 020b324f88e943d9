"""The console as a person clicks it: Chromium (Debian's) driven by Playwright against
`erp-pipeline run console` and the real workers, broker and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from consumers.dev import erp_seed
from consumers.dev import samples as se
from consumers.dev.services import free_port
from consumers.dev.stack import Stack
from pipeline.settings import Settings
from tests.support.db import rows, seeded_company, statuses
from tests.support.events import for_company
from tests.support.kafka import isolated, publish
from tests.support.waiting import eventually
from tests.support.workers import Workers
from topics.specs import DIRECTORY, SUBMISSIONS

playwright = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.timeout(300)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
COMPANY = "console-browser"
#: How long the page may take to follow an item to its next status (the pipeline's work).
FOLLOW_MS = 90_000


@dataclass
class Live:
    settings: Settings
    url: str


@pytest.fixture(scope="module")
def live(
    stack: Stack, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    mine = asyncio.run(isolated(settings, "browser"))
    seeded_company(mine, COMPANY)
    publish(
        mine,
        DIRECTORY,
        for_company(COMPANY, se.company_settings()),
        for_company(COMPANY, se.approver_updated(se.APPROVER)),
        for_company(COMPANY, se.approver_updated(se.VIEWER, privileged=False)),
    )
    port = free_port()
    workers = Workers.beside(
        stack,
        mine,
        tmp_path_factory.mktemp("browser-data"),
        CONSOLE_PORT=str(port),
        CONSOLE_DEV_SIGNIN="true",
    )
    try:
        for name in ("processor", "projection", "catalog", "exporter", "console"):
            workers.start_worker(name)
        yield Live(mine, f"http://127.0.0.1:{port}")
    finally:
        workers.stop_workers()


@pytest.fixture(scope="module")
def browser(live: Live) -> Iterator[Any]:
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def _page_as(browser: Any, live: Live, person: dict[str, str]) -> Any:
    """A fresh browser context signed in as `person` through the dev sign-in page."""
    page = browser.new_context(base_url=live.url).new_page()
    eventually(
        lambda: _signin_lists(page, person["name"]),
        timeout=60,
        message="the console never listed the directory on /signin",
    )
    page.get_by_role("button", name=f"Sign in as {person['name']}").click()
    page.wait_for_url(re.compile(r"/tabs/jobs/ready-to-export"))
    return page


def _signin_lists(page: Any, name: str) -> bool:
    try:
        page.goto("/signin")
    except playwright.Error:
        return False
    return name in page.content()


def _publish(settings: Settings, spec: Any, *events: dict[str, Any]) -> None:
    """`publish` from a thread of its own: Playwright's sync API keeps an event loop running
    in the test's thread, where `asyncio.run` cannot start another."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(publish, settings, spec, *events).result()


def _submit(live: Live, event: dict[str, Any]) -> str:
    event = for_company(COMPANY, event)
    _publish(live.settings, SUBMISSIONS, event)
    item = str(event["item"]["id"])
    eventually(
        lambda: statuses(live.settings, COMPANY).get(item) == "ready_to_export",
        timeout=60,
        message=f"{item} never reached Ready to Export",
    )
    return item


def _status_shows(page: Any, status: str) -> None:
    playwright.expect(page.get_by_test_id("status")).to_have_text(status, timeout=FOLLOW_MS)


def test_an_approver_exports_a_project_with_a_template_and_job_id(browser: Any, live: Live) -> None:
    item = _submit(live, se.project_submitted(f"prj-{uuid.uuid4().hex[:6]}"))
    page = _page_as(browser, live, se.APPROVER)
    page.get_by_role("link", name=f"project {item}").click()
    page.get_by_label("Job template").select_option("COMM")
    page.get_by_label("Spectrum Job ID").fill(f"W{item[-6:]}")
    page.get_by_role("button", name="Export").click()
    playwright.expect(page.get_by_role("status")).to_contain_text("sent")
    _status_shows(page, "synced")  # the page follows the item on its own
    playwright.expect(page.get_by_text(f"W{item[-6:]}").first).to_be_visible()


def test_an_approver_rejects_a_commitment_with_a_reason(browser: Any, live: Live) -> None:
    item = _submit(live, se.commitment_submitted(f"sc-{uuid.uuid4().hex[:6]}"))
    page = _page_as(browser, live, se.APPROVER)
    page.goto("/tabs/commitments/ready-to-export")
    page.get_by_role("link", name=f"commitment {item}").click()
    page.get_by_label("Reason").fill("Retention terms missing")
    page.get_by_role("button", name="Reject").click()
    _status_shows(page, "rejected")
    page.goto("/tabs/commitments/rejected")
    playwright.expect(page.get_by_role("row", name=re.compile(item))).to_contain_text(
        "Retention terms missing"
    )


def test_a_decision_on_a_page_left_open_over_a_re_send_is_refused_as_stale(
    browser: Any, live: Live
) -> None:
    item = _submit(live, se.commitment_submitted(f"sc-{uuid.uuid4().hex[:6]}"))
    page = _page_as(browser, live, se.APPROVER)
    page.goto(f"/items/commitment/{item}")
    _publish(
        live.settings,
        SUBMISSIONS,
        for_company(COMPANY, se.retrieved("commitment", item)),
        for_company(COMPANY, se.commitment_submitted(item)),
    )
    eventually(
        lambda: (
            rows(live.settings, "SELECT submission_version FROM items WHERE item_id = %s", item)
            == [(2,)]
        ),
        timeout=60,
        message="the re-send never reached the read model",
    )
    page.get_by_role("button", name="Export").click()
    playwright.expect(page.get_by_role("status")).to_contain_text(
        "ItemAccepted for stale submission version 1 (current is 2)"
    )


def test_a_read_only_user_is_offered_no_decision(browser: Any, live: Live) -> None:
    item = _submit(live, se.commitment_submitted(f"sc-{uuid.uuid4().hex[:6]}"))
    page = _page_as(browser, live, se.VIEWER)
    page.goto(f"/items/commitment/{item}")
    playwright.expect(page.get_by_test_id("status")).to_have_text("ready_to_export")
    playwright.expect(page.get_by_role("button", name="Export")).to_have_count(0)
    playwright.expect(page.get_by_role("button", name="Reject")).to_have_count(0)
    playwright.expect(page.get_by_text("read-only")).to_be_visible()


def test_bulk_retry_after_the_missing_vendor_is_added_syncs(browser: Any, live: Live) -> None:
    project = _submit(live, se.project_submitted(f"prj-{uuid.uuid4().hex[:6]}"))
    page = _page_as(browser, live, se.APPROVER)
    page.goto(f"/items/project/{project}")
    page.get_by_label("Spectrum Job ID").fill(f"V{project[-6:]}")
    page.get_by_role("button", name="Export").click()
    _status_shows(page, "synced")
    vendor = f"V{uuid.uuid4().hex[:5].upper()}"
    numbers = [uuid.uuid4().hex[:6] for _ in range(2)]
    items = [
        _submit(
            live,
            se.commitment_submitted(
                f"sc-{n}",
                number=f"S{n}",
                erp_vendor_id=vendor,
                project={"id": project, "name": "Riverside Medical Office"},
            ),
        )
        for n in numbers
    ]
    page.goto("/tabs/commitments/ready-to-export")
    for item in items:
        page.get_by_label(f"select {item}").check()
    page.get_by_role("button", name="Accept selected").click()
    eventually(
        lambda: all(statuses(live.settings, COMPANY).get(i) == "failed_to_export" for i in items),
        timeout=90,
        message="the commitments never failed to export",
    )
    with psycopg.connect(live.settings.require_erp_database_url()) as conn:
        erp_seed.add_vendor(conn, COMPANY, vendor, "Late Vendor LLC")
    page.goto("/tabs/commitments/failed-to-export")
    for item in items:
        playwright.expect(page.get_by_role("row", name=re.compile(item))).to_contain_text(vendor)
        page.get_by_label(f"select {item}").check()
    page.get_by_role("button", name="Retry selected").click()
    for item in items:
        playwright.expect(page.get_by_role("status")).to_contain_text(f"{item}: sent")
    eventually(
        lambda: all(statuses(live.settings, COMPANY).get(i) == "synced" for i in items),
        timeout=90,
        message="the retried commitments never synced",
    )
    page.goto("/tabs/commitments/synced")
    for item in items:
        playwright.expect(page.get_by_role("row", name=re.compile(item))).to_be_visible()
