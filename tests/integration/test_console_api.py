"""The console's JSON API on the real broker and PostgreSQL, with the real processor, projection
and exporter: decisions made through it reach the ERP, refusals come back on the spot."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from consumers.console.app import build_app
from consumers.console.settings import ConsoleSettings
from consumers.dev import erp_seed
from consumers.dev import samples as se
from consumers.dev.stack import Stack
from pipeline.settings import Settings
from tests.support.db import seeded_company
from tests.support.events import for_company
from tests.support.kafka import isolated, publish
from tests.support.waiting import eventually
from tests.support.workers import Workers
from topics.specs import DECISIONS, DIRECTORY, SUBMISSIONS

pytestmark = pytest.mark.timeout(240)

COMPANY = "console-api"
OTHER = "console-other"


@dataclass
class Live:
    """The pipeline's workers on topics of their own, and the console in-process."""

    settings: Settings
    client: TestClient


def as_user(user: dict[str, str], company: str = COMPANY) -> dict[str, str]:
    """The trusted proxy's headers naming `user` of `company`."""
    return {"X-Auth-User": user["user_id"], "X-Auth-Company": company}


APPROVER, VIEWER = as_user(se.APPROVER), as_user(se.VIEWER)


@pytest.fixture(scope="module")
def live(
    stack: Stack, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    mine = asyncio.run(isolated(settings, "console"))
    seeded_company(mine, COMPANY)
    workers = Workers.beside(stack, mine, tmp_path_factory.mktemp("console-data"))
    publish(
        mine,
        DIRECTORY,
        for_company(COMPANY, se.company_settings()),
        for_company(COMPANY, se.approver_updated(se.APPROVER)),
        for_company(COMPANY, se.approver_updated(se.VIEWER, privileged=False)),
        for_company(OTHER, se.approver_updated(se.APPROVER)),
    )
    console = ConsoleSettings(user_header="X-Auth-User", company_header="X-Auth-Company")
    app = build_app(mine, console, registry=CollectorRegistry())
    try:
        for name in ("processor", "projection", "catalog", "exporter"):
            workers.start_worker(name)
        with TestClient(app) as client:
            eventually(
                lambda: client.get("/api/v1/me", headers=VIEWER).status_code == 200,
                timeout=30,
                message="the console never read the directory",
            )
            yield Live(mine, client)
    finally:
        workers.stop_workers()


def _submit(live: Live, event: dict[str, Any]) -> str:
    """Publish a submission and wait until the console shows it; its item id."""
    event = for_company(COMPANY, event)
    publish(live.settings, SUBMISSIONS, event)
    kind, item = event["item"]["type"], event["item"]["id"]
    _status(live, kind, item, "ready_to_export")
    return str(item)


def _item(live: Live, kind: str, item: str) -> dict[str, Any] | None:
    answer = live.client.get(f"/api/v1/items/{kind}/{item}", headers=APPROVER)
    return answer.json() if answer.status_code == 200 else None


def _status(live: Live, kind: str, item: str, status: str) -> dict[str, Any]:
    def shown() -> dict[str, Any] | None:
        found = _item(live, kind, item)
        return found if found and found["item"]["status"] == status else None

    return eventually(
        shown,
        timeout=90,
        message=lambda: f"{kind}:{item} is {(_item(live, kind, item) or {}).get('item')}",
    )


def _decide(
    live: Live, kind: str, item: str, decision: str, headers: dict[str, str], **body: Any
) -> Any:
    return live.client.post(f"/api/v1/items/{kind}/{item}/{decision}", json=body, headers=headers)


def test_a_project_accepted_with_a_template_and_job_id_is_shown_synced(live: Live) -> None:
    item = _submit(live, se.project_submitted(f"prj-{uuid.uuid4().hex[:6]}"))
    templates = live.client.get("/api/v1/job-templates", headers=APPROVER).json()["templates"]
    assert "COMM" in [t["code"] for t in templates]
    job = f"J{item[-6:]}"
    fields = {"erp_job_id": job, "job_template": "COMM"}
    answer = _decide(live, "project", item, "accept", APPROVER, submission_version=1, fields=fields)
    assert answer.status_code == 202, answer.text
    synced = _status(live, "project", item, "synced")
    assert synced["item"]["erp_reference"] == job
    # the catalog (snapshots, decisions) is written beside the status: wait for it too
    synced = eventually(
        lambda: (
            (found := _item(live, "project", item))
            and found["submitted"]
            and any(h["decision_payload"] for h in found["history"])
            and found
        ),
        timeout=60,
        message="the item page never showed the snapshot and the accept fields",
    )
    by = [(h["status"], h["by"], h["decision_payload"]) for h in synced["history"]]
    assert ("exporting", se.APPROVER["email"], {**fields, "submission_version": 1}) in by
    assert synced["submitted"]["snapshot"]["customer"] == "Riverside Health"
    listed = live.client.get("/api/v1/tabs/jobs/synced", headers=APPROVER).json()
    assert item in [row["item_id"] for row in listed["items"]]


def test_a_template_the_erp_lacks_and_a_job_id_it_used_are_refused_on_the_spot(
    live: Live,
) -> None:
    first = _submit(live, se.project_submitted(f"prj-{uuid.uuid4().hex[:6]}"))
    job = f"K{first[-6:]}"
    fields = {"erp_job_id": job, "job_template": "COMM"}
    assert (
        _decide(
            live, "project", first, "accept", APPROVER, submission_version=1, fields=fields
        ).status_code
        == 202
    )
    _status(live, "project", first, "synced")
    second = _submit(live, se.project_submitted(f"prj-{uuid.uuid4().hex[:6]}"))
    used = _decide(live, "project", second, "accept", APPROVER, submission_version=1, fields=fields)
    assert used.status_code == 409
    assert used.json()["reason"] == f"Job ID {job} is already used in the ERP by another job"
    fields = {"erp_job_id": f"L{second[-6:]}", "job_template": "NOPE"}
    unknown = _decide(
        live, "project", second, "accept", APPROVER, submission_version=1, fields=fields
    )
    assert unknown.status_code == 409 and "NOPE is not one of" in unknown.json()["reason"]
    # a Job ID longer than Spectrum takes: refused here, not left to fail the export
    fields = {"erp_job_id": "ABCDEFGHIJK", "job_template": "COMM"}
    long = _decide(live, "project", second, "accept", APPROVER, submission_version=1, fields=fields)
    assert long.status_code == 409
    assert long.json()["reason"] == (
        "The Job ID 'ABCDEFGHIJK' is 11 characters; Spectrum takes at most 10"
    )
    assert _item(live, "project", second)["item"]["status"] == "ready_to_export"  # type: ignore[index]


def test_a_commitment_rejected_with_a_reason_shows_rejected_with_it(live: Live) -> None:
    item = _submit(live, se.commitment_submitted(f"sc-{uuid.uuid4().hex[:6]}"))
    answer = _decide(
        live, "commitment", item, "reject", APPROVER, submission_version=1, reason="Wrong vendor"
    )
    assert answer.status_code == 202, answer.text
    rejected = _status(live, "commitment", item, "rejected")
    assert rejected["item"]["reason"] == "Wrong vendor"
    assert rejected["actions"] == []
    view = live.client.get(
        "/api/v1/tabs/commitments/rejected", headers=APPROVER, params={"sender": se.SENDER["email"]}
    ).json()
    assert item in [row["item_id"] for row in view["items"]]


def test_a_stale_version_is_refused_on_the_spot_with_the_pipelines_reason(live: Live) -> None:
    item = _submit(live, se.commitment_submitted(f"sc-{uuid.uuid4().hex[:6]}"))
    assert (
        _decide(
            live, "commitment", item, "reject", APPROVER, submission_version=1, reason="No"
        ).status_code
        == 202
    )
    _status(live, "commitment", item, "rejected")
    resent = se.commitment_submitted(item)
    resent["payload"]["snapshot"]["description"] = "Foundations only"
    _submit(live, resent)  # version 2
    stale = _decide(live, "commitment", item, "accept", APPROVER, submission_version=1)
    assert stale.status_code == 409
    assert stale.json() == {
        "outcome": "refused",
        "stage": "transition",
        "reason": "ItemAccepted for stale submission version 1 (current is 2)",
    }
    # a version the console never showed would be held by the pipeline and applied unseen
    unseen = _decide(live, "commitment", item, "accept", APPROVER, submission_version=3)
    assert unseen.status_code == 409
    assert unseen.json()["reason"].startswith("submission version 3 was never shown")
    shown = eventually(
        lambda: (found := _item(live, "commitment", item)) and found["changes"] and found,
        timeout=60,
        message="the item page never showed what changed since version 1",
    )
    assert shown["item"]["submission_version"] == 2 and shown["previous_version"] == 1
    assert shown["changes"] == [
        {
            "field": "snapshot.description",
            "before": "Foundations and slab",
            "after": "Foundations only",
        }
    ]


def test_a_read_only_user_sees_the_views_but_gets_403_with_the_reason(live: Live) -> None:
    item = _submit(live, se.commitment_submitted(f"sc-{uuid.uuid4().hex[:6]}"))
    view = live.client.get("/api/v1/tabs/commitments/ready-to-export", headers=VIEWER)
    assert view.status_code == 200 and view.json()["actions"] == []
    assert item in [row["item_id"] for row in view.json()["items"]]
    answer = _decide(live, "commitment", item, "accept", VIEWER, submission_version=1)
    assert answer.status_code == 403
    assert answer.json()["reason"].startswith(
        "user u-vic may not push to accounting (ERP permission read_only, "
        "can_push_to_accounting=false)"
    )
    # sent behind the console's back, the pipeline refuses it: the item page shows why
    publish(
        live.settings,
        DECISIONS,
        for_company(COMPANY, se.accepted("commitment", item, actor=se.VIEWER)),
    )
    refused = eventually(
        lambda: (_item(live, "commitment", item) or {}).get("refusals"),
        timeout=60,
        message="the refused decision never showed on the item",
    )
    assert [(r["event_type"], r["stage"], r["by"]) for r in refused] == [
        ("ItemAccepted", "authorize", se.VIEWER["email"])
    ]
    assert refused[0]["error"].startswith(answer.json()["reason"])
    other = live.client.get(f"/api/v1/items/commitment/{item}", headers=as_user(se.APPROVER, OTHER))
    assert other.status_code == 404  # another company's person never sees it
    stranger = {"X-Auth-User": "u-nobody", "X-Auth-Company": COMPANY}
    assert live.client.get("/api/v1/tabs", headers=stranger).status_code == 403
    assert live.client.get("/api/v1/tabs").status_code == 401


def _synced_project(live: Live) -> dict[str, str]:
    """A project accepted through the console and synced: commitments can be exported on it."""
    item = _submit(live, se.project_submitted(f"prj-{uuid.uuid4().hex[:6]}"))
    fields = {"erp_job_id": f"B{item[-6:]}", "job_template": "COMM"}
    answer = _decide(live, "project", item, "accept", APPROVER, submission_version=1, fields=fields)
    assert answer.status_code == 202, answer.text
    _status(live, "project", item, "synced")
    return {"id": item, "name": "Riverside Medical Office"}


def test_bulk_retry_after_the_missing_vendor_is_added_syncs(live: Live) -> None:
    project = _synced_project(live)
    vendor = f"V{uuid.uuid4().hex[:5].upper()}"
    items = [
        _submit(
            live,
            se.commitment_submitted(
                f"sc-{number}", number=f"S{number}", erp_vendor_id=vendor, project=project
            ),
        )
        for number in (uuid.uuid4().hex[:6], uuid.uuid4().hex[:6])
    ]
    accepted = live.client.post(
        "/api/v1/bulk/accept",
        headers=APPROVER,
        json={
            "items": [
                {"item_type": "commitment", "item_id": i, "submission_version": 1} for i in items
            ]
        },
    )
    assert [r["outcome"] for r in accepted.json()["results"]] == ["sent", "sent"]
    for item in items:
        failed = _status(live, "commitment", item, "failed_to_export")
        assert vendor in failed["item"]["last_error"]
        assert failed["actions"] == ["retry", "reject"]
    view = live.client.get("/api/v1/tabs/commitments/failed-to-export", headers=APPROVER).json()
    assert set(items) <= {row["item_id"] for row in view["items"]}
    with psycopg.connect(live.settings.require_erp_database_url()) as conn:
        erp_seed.add_vendor(conn, COMPANY, vendor, "Late Vendor LLC")
    retried = live.client.post(
        "/api/v1/bulk/retry",
        headers=APPROVER,
        json={
            "items": [
                {"item_type": "commitment", "item_id": i, "submission_version": 1} for i in items
            ]
            + [{"item_type": "commitment", "item_id": "sc-unknown", "submission_version": 1}]
        },
    )
    assert [r["outcome"] for r in retried.json()["results"]] == ["sent", "sent", "not_found"]
    for item in items:
        assert _status(live, "commitment", item, "synced")["item"]["erp_reference"]


def test_counts_and_metrics(live: Live) -> None:
    tabs = live.client.get("/api/v1/tabs", headers=APPROVER).json()["tabs"]
    assert [t["name"] for t in tabs] == ["jobs", "commitments", "change-orders"]
    assert all(len(t["views"]) == 7 for t in tabs)
    assert live.client.get("/api/v1/openapi.json").json()["paths"]["/api/v1/bulk/{decision}"]
    metrics = live.client.get("/metrics").text
    assert 'erp_pipeline_console_refusals_total{stage="authorize"}' in metrics
    assert 'erp_pipeline_console_decisions_total{decision="ItemAccepted"}' in metrics
    # a NUL in a path or a query is the request's error, never an outage (it answered 503)
    for url in ("/api/v1/items/commitment/%00x", "/api/v1/tabs/commitments/synced?project=%00"):
        assert live.client.get(url, headers=APPROVER).status_code == 400, url
    # methods a client makes up are counted as one label value, not one each
    for method in ("FOO1", "XYZ"):
        live.client.request(method, "/api/v1/me", headers=APPROVER)
    metrics = live.client.get("/metrics").text
    assert 'method="FOO1"' not in metrics and 'method="XYZ"' not in metrics
    assert 'erp_pipeline_console_requests_total{method="other"' in metrics


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page)
    assert found, page[:2000]
    return found.group(1)


def test_every_view_and_the_item_page_render_for_each_type(live: Live) -> None:
    items = {
        "project": _submit(live, se.project_submitted(f"prj-{uuid.uuid4().hex[:6]}")),
        "commitment": _submit(live, se.commitment_submitted(f"sc-{uuid.uuid4().hex[:6]}")),
        "commitment_change_order": _submit(live, se.cco_submitted(f"cco-{uuid.uuid4().hex[:6]}")),
        "prime_contract_change_order": _submit(
            live, se.pcco_submitted(f"pcco-{uuid.uuid4().hex[:6]}")
        ),
    }
    for tab in ("jobs", "commitments", "change-orders"):
        for view in (
            "ready-to-export",
            "failed-to-export",
            "exporting",
            "synced",
            "rejected",
            "retrieved",
            "send-refused",
        ):
            page = live.client.get(f"/tabs/{tab}/{view}", headers=APPROVER)
            assert page.status_code == 200, (tab, view, page.text[:500])
    ready = live.client.get("/tabs/change-orders/ready-to-export", headers=APPROVER).text
    assert (
        items["commitment_change_order"] in ready and items["prime_contract_change_order"] in ready
    )
    for kind, item in items.items():
        page = live.client.get(f"/items/{kind}/{item}", headers=APPROVER)
        assert page.status_code == 200 and "Accept" in page.text and "Reject" in page.text
    project = live.client.get(f"/items/project/{items['project']}", headers=APPROVER).text
    assert '<option value="COMM">' in project  # the ERP's templates
    pcco = live.client.get(
        f"/items/prime_contract_change_order/{items['prime_contract_change_order']}",
        headers=APPROVER,
    ).text
    assert re.search(r'name="transaction_date" value="\d{4}-\d\d-\d\d"', pcco)
    viewer = live.client.get(f"/items/commitment/{items['commitment']}", headers=VIEWER).text
    assert "Reject" not in viewer and "read-only" in viewer


def test_a_rejection_through_the_item_page_form_needs_its_csrf_token(live: Live) -> None:
    item = _submit(live, se.commitment_submitted(f"sc-{uuid.uuid4().hex[:6]}"))
    page = live.client.get(f"/items/commitment/{item}", headers=APPROVER).text
    form = {"submission_version": "1", "reason": "Missing retention terms"}
    forged = live.client.post(f"/items/commitment/{item}/reject", data=form, headers=APPROVER)
    assert forged.status_code == 403
    sent = live.client.post(
        f"/items/commitment/{item}/reject",
        data={**form, "csrf_token": _csrf(page)},
        headers=APPROVER,
        follow_redirects=False,
    )
    assert sent.status_code == 303 and "after=" in sent.headers["location"]
    assert _status(live, "commitment", item, "rejected")["item"]["reason"] == (
        "Missing retention terms"
    )
    following = live.client.get(sent.headers["location"], headers=APPROVER).text
    assert "Missing retention terms" in following and 'http-equiv="refresh"' not in following


def test_views_filter_by_part_of_a_project_or_sender_in_any_case(live: Live) -> None:
    """The filters matched only an exact, case-sensitive value ("Riverside" found nothing)."""
    item = _submit(live, se.commitment_submitted(f"sc-{uuid.uuid4().hex[:6]}"))
    view = "/api/v1/tabs/commitments/ready-to-export"
    for query in ("project=riverside", "project=MEDICAL", "sender=pat", "sender=PAT.PM@acme"):
        found = live.client.get(f"{view}?{query}", headers=APPROVER).json()["items"]
        assert item in [row["item_id"] for row in found], query
    found = live.client.get(f"{view}?project=nowhere", headers=APPROVER).json()["items"]
    assert item not in [row["item_id"] for row in found]
    # % and _ are text here, not patterns
    assert live.client.get(f"{view}?sender=%25", headers=APPROVER).json()["items"] == []


def test_the_page_and_the_api_refuse_the_same_bad_filters_the_same_way(live: Live) -> None:
    """The page ignored an age that is not a number (showing every item as if unfiltered)
    while the API refused it; both now answer 422 naming what is wrong, and take a blank
    age (a form's empty field) as no filter."""
    for base in ("/tabs/commitments/ready-to-export", "/api/v1/tabs/commitments/ready-to-export"):
        for query, words in (
            ("min_age_days=abc", "min_age_days"),
            ("min_age_days=-1", "min_age_days"),
            ("min_age_days=nan", "min_age_days"),
            ("sort=oldest", "age, -age, project, sender"),
        ):
            answer = live.client.get(f"{base}?{query}", headers=APPROVER)
            assert answer.status_code == 422, (base, query, answer.text[:200])
            assert words in answer.json()["detail"], (base, query)
        for query in ("min_age_days=", "min_age_days=0.5&sort=-age", "project=&sender="):
            assert live.client.get(f"{base}?{query}", headers=APPROVER).status_code == 200
        assert live.client.get(f"{base[:-1]}x", headers=APPROVER).status_code == 404


def test_a_refused_form_keeps_what_was_entered_and_a_followed_decision_stops_waiting(
    live: Live,
) -> None:
    """A refusal emptied the form (the approver then exported with the first template); a
    decision the pipeline never answers made the page reload itself for good."""
    item = _submit(live, se.project_submitted(f"prj-{uuid.uuid4().hex[:6]}"))
    page = live.client.get(f"/items/project/{item}", headers=APPROVER)
    form = {
        "csrf_token": _csrf(page.text),
        "submission_version": "1",
        "job_template": "RES",
        "erp_job_id": "TOOLONGJOBID",
    }
    answer = live.client.post(
        f"/items/project/{item}/accept", data=form, headers=APPROVER, follow_redirects=True
    )
    assert "TOOLONGJOBID" in answer.text and "Spectrum takes at most 10" in answer.text
    assert '<option value="RES" selected>' in answer.text
    stale = live.client.get(f"/items/project/{item}?after=99&since=0", headers=APPROVER).text
    assert 'http-equiv="refresh"' not in stale
    assert "has not answered the decision" in stale
    fresh = live.client.get(f"/items/project/{item}?after=99", headers=APPROVER).text
    assert 'http-equiv="refresh"' in fresh
