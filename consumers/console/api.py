"""The JSON API under /api/v1: views with counts, an item with its history, decisions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from consumers.console import erp
from consumers.console.auth import CSRF_HEADER, Person, check_csrf, csrf_token
from consumers.console.context import Console, console_of, person_of
from consumers.console.decisions import Answer
from consumers.console.detail import snapshot_and_changes
from consumers.console.filters import ViewQuery, view_query
from consumers.console.views import ACTIONS, TABS, VIEWS, tab_of
from consumers.readmodel import queries
from topics.payloads import ItemStatus

router = APIRouter(prefix="/api/v1", tags=["console"])

Signed = Annotated[Person, Depends(person_of)]
Ctx = Annotated[Console, Depends(console_of)]


def plain(row: dict[str, Any]) -> dict[str, Any]:
    """A read-model row as JSON: money as a decimal string, times in RFC 3339."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, Decimal):
            out[key] = f"{value:.2f}"
        elif isinstance(value, dt.datetime):
            out[key] = value.isoformat()
        else:
            out[key] = value
    return out


@router.get("/me")
def me(person: Signed, console: Ctx) -> dict[str, Any]:
    """The signed-in person, whether they may decide, and their company's settings."""
    settings = console.directory.settings(person.company_id)
    return {
        "company_id": person.company_id,
        "user": person.actor.model_dump(),
        "erp_tool_permission": person.entry.erp_tool_permission.value,
        "can_push_to_accounting": person.entry.can_push_to_accounting,
        "may_decide": person.may_decide,
        "company": settings.model_dump(mode="json"),
        # what a cookie session sends back in X-CSRF-Token (None: signed in otherwise)
        "csrf_token": csrf_token(console.settings, person) if person.by_cookie else None,
    }


@router.get("/tabs")
def tabs(person: Signed, console: Ctx) -> dict[str, Any]:
    """Every tab with every view and how many items it holds."""
    counts: dict[tuple[str, str], int] = {}
    for row in queries.counts(console.database_url, person.company_id):
        counts[(row["item_type"], row["status"])] = row["count"]
    return {
        "tabs": [
            {
                "name": tab.name,
                "title": tab.title,
                "views": [
                    {
                        "name": view.name,
                        "title": view.title,
                        "count": sum(
                            counts.get((t.value, view.status.value), 0) for t in tab.item_types
                        ),
                    }
                    for view in VIEWS.values()
                ],
            }
            for tab in TABS.values()
        ]
    }


@router.get("/tabs/{tab}/{view}")
def list_view(
    person: Signed,
    console: Ctx,
    query: Annotated[ViewQuery, Depends(view_query)],
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """The items of one view of one tab: filter by project (id or name), sender (e-mail or
    name) and age (sent at least `min_age_days` ago), sorted by age (oldest first; `-age`
    newest first), project or sender. 404 for an unknown tab or view, 422 for an unknown
    sort or an age that is not a number of days."""
    rows = query.rows(console.database_url, person.company_id, limit=limit, offset=offset)
    return {
        "tab": query.tab.name,
        "view": query.view.name,
        "count": len(rows),
        "actions": list(ACTIONS.get(query.view.status, ())) if person.may_decide else [],
        "items": [plain(row) for row in rows],
    }


@router.get("/items/{item_type}/{item_id}")
def item_detail(person: Signed, console: Ctx, item_type: str, item_id: str) -> dict[str, Any]:
    """One item: its current row; `submitted`, the payload of its current submission
    (snapshot, number, title, amount, project, created_by); `changes` since
    `previous_version`, the latest earlier version (rejected or retrieved); its history
    (oldest first, each decision with the fields entered); the refused attempts; and the
    decisions it offers the signed-in person. 404 when the company has no such item."""
    try:
        tab = tab_of(item_type)
    except ValueError:
        raise HTTPException(404, f"no item type {item_type}") from None
    row = queries.item(console.database_url, person.company_id, item_type, item_id)
    if row is None:
        raise HTTPException(404, f"no item {item_type}:{item_id}")
    url, company = console.database_url, person.company_id
    history = queries.history_with_decisions(url, company, item_type, item_id)
    refused = queries.refusals(url, company, item_type, item_id)
    actions = ACTIONS.get(ItemStatus(row["status"]), ()) if person.may_decide else ()
    return {
        "tab": tab.name,
        "item": plain(row),
        **snapshot_and_changes(url, company, item_type, item_id, row["submission_version"]),
        "history": [plain(entry) for entry in history],
        "refusals": [plain(entry) for entry in refused],
        "actions": list(actions),
    }


@router.get("/job-templates")
def job_templates(person: Signed, console: Ctx) -> dict[str, Any]:
    """The job templates the company has in the ERP (what a project's accept offers)."""
    return {"templates": erp.job_templates(console.erp_database_url, person.company_id)}


class Decision(BaseModel):
    """A decision on one item: the version the person saw, and for an accept the type's
    fields (project: erp_job_id, job_template; commitment: details; CCO: change_order_date,
    erp_change_order_id, description; PCCO: transaction_date), for a reject the reason."""

    submission_version: int = Field(ge=1)
    fields: dict[str, Any] = Field(default_factory=dict)
    reason: str | None = None


class BulkEntry(Decision):
    """One item of a bulk decision."""

    item_type: str
    item_id: str


class Bulk(BaseModel):
    """Items to accept or retry at once; each gets its own answer."""

    items: list[BulkEntry] = Field(min_length=1, max_length=200)


def _answer(answer: Answer) -> JSONResponse:
    return JSONResponse(answer.as_json(), status_code=answer.status_code)


async def _decide(
    console: Console, person: Person, decision: str, item_type: str, item_id: str, body: Decision
) -> Answer:
    fields = dict(body.fields)
    if decision == "reject":
        fields = {"reason": body.reason}
    return await console.decider.decide(
        person, decision, item_type, item_id, body.submission_version, fields
    )


@router.post(
    "/items/{item_type}/{item_id}/{decision}",
    status_code=202,
    responses={
        403: {"description": "not allowed to decide (the reason)"},
        409: {"description": "refused as the pipeline would refuse it (stage, reason)"},
        422: {"description": "fields that break the contract"},
    },
)
async def decide(
    person: Signed,
    console: Ctx,
    item_type: str,
    item_id: str,
    decision: Literal["accept", "reject", "retry"],
    body: Decision,
    csrf: Annotated[str | None, Header(alias=CSRF_HEADER)] = None,
) -> JSONResponse:
    """Accept, reject or retry one item: 202 once the decision is on erp.decisions (the item
    then moves on its own; follow it with GET /items/...), else refused with the reason."""
    check_csrf(person, console.settings, csrf)
    return _answer(await _decide(console, person, decision, item_type, item_id, body))


@router.post("/bulk/{decision}")
async def bulk(
    person: Signed,
    console: Ctx,
    decision: Literal["accept", "retry"],
    body: Bulk,
    csrf: Annotated[str | None, Header(alias=CSRF_HEADER)] = None,
) -> dict[str, Any]:
    """Accept or retry several items; `results` answers each in the order given."""
    check_csrf(person, console.settings, csrf)
    results = []
    for entry in body.items:
        answer = await _decide(console, person, decision, entry.item_type, entry.item_id, entry)
        results.append({"item_type": entry.item_type, "item_id": entry.item_id, **answer.as_json()})
    return {"results": results}
