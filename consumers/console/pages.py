"""Server-rendered pages: the dev sign-in, the tabs and views, the item page with its forms."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from consumers.console.auth import SESSION_COOKIE, sign_session
from consumers.console.context import Console, console_of

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

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
