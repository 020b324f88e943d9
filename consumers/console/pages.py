"""Server-rendered pages: the dev sign-in, the tabs and views, the item page with its forms."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from consumers.console import erp
from consumers.console.auth import (
    CSRF_FIELD,
    SESSION_COOKIE,
    Person,
    check_csrf,
    csrf_token,
    sign_session,
)
from consumers.console.context import Console, console_of, person_of
from consumers.console.decisions import Answer
from consumers.console.detail import snapshot_and_changes
from consumers.console.filters import ViewQuery, view_query
from consumers.console.views import ACTIONS, TABS, VIEWS, Tab, View, tab_of
from consumers.readmodel import queries
from topics.payloads import ItemStatus, ItemType

#: The bulk decision each view offers.
BULK: dict[ItemStatus, str] = {
    ItemStatus.READY_TO_EXPORT: "accept",
    ItemStatus.FAILED_TO_EXPORT: "retry",
}

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def money(value: object) -> str:
    """An amount as people read it, `250,000.00` (blank for none; as given if not a number)."""
    if value is None or value == "":
        return ""
    try:
        return f"{Decimal(str(value)):,.2f}"
    except InvalidOperation:
        return str(value)


templates.env.filters["money"] = money

Ctx = Annotated[Console, Depends(console_of)]


def not_signed_in(request: Request, reason: str) -> Response:
    """401 for the API; the sign-in page (when enabled) or a 401 page for a browser."""
    if request.url.path.startswith("/api/"):
        return JSONResponse({"detail": reason}, status_code=401)
    console: Console = request.app.state.console
    if console.settings.dev_signin:
        return RedirectResponse("/signin", status_code=303)
    return HTMLResponse(f"<h1>Not signed in</h1><p>{reason}</p>", status_code=401)


def _dev_only(console: Console) -> None:
    if not console.settings.dev_signin:
        raise HTTPException(404, "the dev sign-in is off (CONSOLE_DEV_SIGNIN)")


@router.get("/signin")
def signin_page(request: Request, console: Ctx) -> Response:
    """Dev only: pick a directory user to act as."""
    _dev_only(console)
    directory = console.directory
    people: list[dict[str, Any]] = [
        {"company_id": company, **entry.model_dump(mode="json")}
        for company in directory.companies()
        for entry in directory.approvers(company)
    ]
    return templates.TemplateResponse(request, "signin.html", {"people": people})


@router.post("/signin")
def signin(
    console: Ctx, company_id: Annotated[str, Form()], user_id: Annotated[str, Form()]
) -> Response:
    """Dev only: sign in as the chosen user (a signed cookie)."""
    _dev_only(console)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        sign_session(console.settings, company_id, user_id),
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/signout")
def signout() -> Response:
    """Forget the dev sign-in cookie."""
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


Signed = Annotated[Person, Depends(person_of)]


def _common(console: Console, person: Person) -> dict[str, Any]:
    """What every page shows: who is signed in, the tabs with their Ready to Export counts."""
    counts: dict[tuple[str, str], int] = {}
    for row in queries.counts(console.database_url, person.company_id):
        counts[(row["item_type"], row["status"])] = row["count"]

    def count(tab: Tab, view: View) -> int:
        return sum(counts.get((t.value, view.status.value), 0) for t in tab.item_types)

    return {
        "person": person,
        "csrf": csrf_token(console.settings, person),
        "tabs": TABS,
        "views": VIEWS,
        "count": count,
        "dev_signin": console.settings.dev_signin,
    }


@router.get("/")
def home() -> Response:
    """The Jobs tab's Ready to Export view."""
    return RedirectResponse("/tabs/jobs/ready-to-export", status_code=303)


@router.get("/tabs/{tab}/{view}")
def view_page(
    request: Request,
    person: Signed,
    console: Ctx,
    query: Annotated[ViewQuery, Depends(view_query)],
    message: str | None = None,
) -> Response:
    """One view of one tab, filtered and sorted, with bulk actions for who may decide."""
    rows = query.rows(console.database_url, person.company_id)
    bulk = BULK.get(query.view.status) if person.may_decide else None
    if bulk == "accept" and query.tab.name == "jobs":
        bulk = None  # a project's accept needs its own Job ID and template
    return templates.TemplateResponse(
        request,
        "view.html",
        {
            **_common(console, person),
            "tab": query.tab,
            "view": query.view,
            "rows": rows,
            "filters": {
                "project": query.project or "",
                "sender": query.sender or "",
                "min_age_days": request.query_params.get("min_age_days", ""),
                "sort": query.sort,
            },
            "sorts": list(queries.SORTS),
            "bulk": bulk,
            "message": message,
        },
    )


@router.get("/items/{item_type}/{item_id}")
def item_page(
    request: Request,
    person: Signed,
    console: Ctx,
    item_type: str,
    item_id: str,
    message: str | None = None,
    after: int | None = None,
    since: float | None = None,
) -> Response:
    """An item: what was submitted, what changed, its history, refusals and decision forms.

    With `after` (the item's sequence when a decision was sent, at `since`, epoch seconds)
    the page reloads itself until a later status change shows, for `FOLLOW_S` at most (then it
    says the pipeline has not answered); while the item is exporting, too. What a person
    entered in a form the console refused comes back in the query (`entered_*`) and is
    filled in again."""
    try:
        tab = tab_of(item_type)
    except ValueError:
        raise HTTPException(404, f"no item type {item_type}") from None
    url, company = console.database_url, person.company_id
    row = queries.item(url, company, item_type, item_id)
    if row is None:
        raise HTTPException(404, f"no item {item_type}:{item_id}")
    status = ItemStatus(row["status"])
    actions = ACTIONS.get(status, ()) if person.may_decide else ()
    settings = console.directory.settings(company)
    templates_ = (
        erp.job_templates(console.erp_database_url, company)
        if "accept" in actions and item_type == ItemType.PROJECT.value
        else []
    )
    now = dt.datetime.now(dt.UTC)
    waiting = after is not None and (row["sequence"] or 0) <= after
    started = since if since is not None else now.timestamp()
    if waiting and now.timestamp() - started > FOLLOW_S:
        waiting = False
        message = (
            f"the pipeline has not answered the decision in {FOLLOW_S:.0f} s: it may be held "
            "(the item is not known to the pipeline) or refused; see the refused attempts "
            "below, or ask an operator to look at erp.dead-letters"
        )
    entered = {
        name[len(ENTERED) :]: value
        for name, value in request.query_params.items()
        if name.startswith(ENTERED)
    }
    return templates.TemplateResponse(
        request,
        "item.html",
        {
            **_common(console, person),
            "tab": tab,
            "item": row,
            **snapshot_and_changes(url, company, item_type, item_id, row["submission_version"]),
            "history": queries.history_with_decisions(url, company, item_type, item_id),
            "refusals": queries.refusals(url, company, item_type, item_id),
            "actions": actions,
            "settings": settings,
            "job_templates": templates_,
            "job_id_chars": erp.JOB_ID_CHARS,
            "today": console.decider.default_transaction_date(company, now).isoformat(),
            "moving": status == ItemStatus.EXPORTING or waiting,
            "after": after if waiting else None,
            "since": started,
            "entered": entered,
            "message": message,
        },
    )


#: How long an item page follows a decision it sent before saying the pipeline did not answer.
FOLLOW_S = 120.0
#: Query prefix of what a person entered in a form the console refused (filled in again).
ENTERED = "entered_"

#: Accept fields each item type's form sends (anything else in the form is ignored).
FORM_FIELDS: dict[str, tuple[str, ...]] = {
    ItemType.PROJECT.value: ("erp_job_id", "job_template"),
    ItemType.COMMITMENT.value: ("details",),
    ItemType.COMMITMENT_CHANGE_ORDER.value: (
        "change_order_date",
        "erp_change_order_id",
        "description",
    ),
    ItemType.PRIME_CONTRACT_CHANGE_ORDER.value: ("transaction_date",),
}


def _back(path: str, message: str) -> Response:
    return RedirectResponse(f"{path}?{urlencode({'message': message})}", status_code=303)


@router.post("/items/{item_type}/{item_id}/{decision}")
async def decide_form(
    request: Request,
    person: Signed,
    console: Ctx,
    item_type: str,
    item_id: str,
    decision: str,
) -> Response:
    """A decision from the item page's forms; back to the item page saying what became of it."""
    form = await request.form()
    check_csrf(person, console.settings, _text(form.get(CSRF_FIELD)), form=True)
    if decision not in ("accept", "reject", "retry") or item_type not in FORM_FIELDS:
        raise HTTPException(404, "no such decision")
    try:
        version = int(_text(form.get("submission_version")) or "0")
    except ValueError:
        version = 0
    fields: dict[str, Any] = {}
    if decision == "accept":
        for name in FORM_FIELDS[item_type]:
            value = (_text(form.get(name)) or "").strip()
            if value:
                fields[name] = value
    elif decision == "reject":
        fields = {"reason": _text(form.get("reason")) or ""}
    before = queries.item(console.database_url, person.company_id, item_type, item_id)
    answer = await console.decider.decide(person, decision, item_type, item_id, version, fields)
    back = f"/items/{item_type}/{item_id}"
    if answer.outcome == "sent" and before is not None:
        # the page follows the item until its next status change shows
        follow = {"after": before["sequence"] or 0, "since": f"{time.time():.0f}"}
        back += f"?{urlencode(follow)}&"
    else:
        # refused: what the person entered is filled in again, nothing to type twice
        back += f"?{urlencode({ENTERED + k: v for k, v in fields.items()})}&"
    return RedirectResponse(f"{back}{urlencode({'message': _said(answer)})}", status_code=303)


@router.post("/tabs/{tab}/{view}/bulk")
async def bulk_form(
    request: Request, person: Signed, console: Ctx, tab: str, view: str
) -> Response:
    """Bulk accept (Ready to Export) or retry (Failed to Export) of the ticked items."""
    form = await request.form()
    check_csrf(person, console.settings, _text(form.get(CSRF_FIELD)), form=True)
    if tab not in TABS or view not in VIEWS:
        raise HTTPException(404, f"no view {tab}/{view}")
    decision = BULK.get(VIEWS[view].status)
    if decision is None:
        raise HTTPException(404, "no bulk action here")
    said = []
    for ticked in form.getlist("item"):
        # each box is `type:version:id` (an id may hold colons; a type or version never does)
        item_type, version, item_id = [*_text(ticked).split(":", 2), "", ""][:3]
        number = int(version) if version.isdigit() else 0
        answer = await console.decider.decide(person, decision, item_type, item_id, number, {})
        said.append(f"{item_id}: {_said(answer)}")
    return _back(f"/tabs/{tab}/{view}", "; ".join(said) or "nothing ticked")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _said(answer: Answer) -> str:
    if answer.outcome == "sent":
        return "sent: the item moves on as the pipeline applies it"
    return f"{answer.outcome}: {answer.reason}"
