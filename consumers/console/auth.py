"""Who is asking: a signed bearer token, a trusted proxy's headers or the dev sign-in cookie.

The identity names a company and a user id; the directory says who that user is and what they
may do. A person sees only their own company. Requests signed in by cookie (the dev sign-in)
must carry the CSRF token on every unsafe method; bearer tokens and proxy headers are not sent
by a browser on its own, so they need none.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import jwt
from fastapi import Request

from consumers.console.settings import ConsoleSettings
from pipeline.rules.directory import Directory, may_decide
from topics.payloads import Actor, ApproverUpdatedPayload, ErpToolPermission

SESSION_COOKIE = "erp_console_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class NotSignedIn(Exception):
    """No identity, or one that cannot be trusted (401)."""


class Forbidden(Exception):
    """Signed in, but not allowed (403); the message says why."""


@dataclass(frozen=True)
class Person:
    """The signed-in user: their company, directory entry and how they signed in."""

    company_id: str
    user_id: str
    entry: ApproverUpdatedPayload
    by_cookie: bool
    session: str = ""

    @property
    def may_decide(self) -> bool:
        """Standard or Admin with Can Push to Accounting (`pipeline.rules.directory`)."""
        return may_decide(self.entry)

    @property
    def actor(self) -> Actor:
        """The actor of the decisions this person makes."""
        return Actor(user_id=self.entry.user_id, email=self.entry.email, name=self.entry.name)


def sign_session(console: ConsoleSettings, company_id: str, user_id: str) -> str:
    """The dev sign-in cookie's value: a token signed with the console's secret."""
    claims = {"company_id": company_id, "sub": user_id}
    return jwt.encode(claims, console.secret.get_secret_value(), algorithm="HS256")


def csrf_token(console: ConsoleSettings, person: Person) -> str:
    """The person's CSRF token: an HMAC, with the console's secret, of who they are and of
    their sign-in cookie when they have one."""
    key = console.secret.get_secret_value().encode()
    signed = "\x00".join((person.company_id, person.user_id, person.session)).encode()
    return hmac.new(key, signed, hashlib.sha256).hexdigest()


def _claimed(request: Request, console: ConsoleSettings) -> tuple[str, str, bool, str]:
    """(company, user, signed in by cookie, cookie value) from the request, or NotSignedIn."""
    header = request.headers.get("Authorization", "")
    if console.jwt_key is not None and header.lower().startswith("bearer "):
        try:
            claims = jwt.decode(
                header[7:].strip(),
                console.jwt_key.get_secret_value(),
                algorithms=console.algorithms(),
                audience=console.jwt_audience,
                issuer=console.jwt_issuer,
                options={"require": ["exp"]},
            )
        except jwt.PyJWTError as exc:
            raise NotSignedIn(f"bearer token refused: {exc}") from None
        company, user = claims.get(console.jwt_company_claim), claims.get(console.jwt_user_claim)
        if not isinstance(company, str) or not isinstance(user, str):
            raise NotSignedIn("bearer token names no company or user")
        return company, user, False, ""
    if console.user_header and console.company_header:
        user = request.headers.get(console.user_header)
        company = request.headers.get(console.company_header)
        if user and company:
            return company, user, False, ""
    cookie = request.cookies.get(SESSION_COOKIE)
    if console.dev_signin and cookie:
        try:
            claims = jwt.decode(cookie, console.secret.get_secret_value(), algorithms=["HS256"])
        except jwt.PyJWTError:
            raise NotSignedIn("sign-in cookie refused") from None
        return str(claims["company_id"]), str(claims["sub"]), True, cookie
    raise NotSignedIn("not signed in")


def identify(request: Request, console: ConsoleSettings, directory: Directory) -> Person:
    """The signed-in person; NotSignedIn (401) or Forbidden (403, with the reason).

    A user the directory does not know, or whose ERP tool permission is `none`, may not use
    the console at all. A cookie session must carry its CSRF token on unsafe methods (the
    `X-CSRF-Token` header; forms are checked by the pages with their `csrf_token` field).
    """
    company, user, by_cookie, session = _claimed(request, console)
    found = directory.current(company, user)
    if found is None:
        raise Forbidden(f"user {user} is not in the company directory")
    entry = found.payload
    if entry.erp_tool_permission == ErpToolPermission.NONE:
        raise Forbidden(f"user {user} has no access to the ERP Integrations tool")
    return Person(company, user, entry, by_cookie, session)


def check_csrf(
    person: Person, console: ConsoleSettings, token: str | None, *, form: bool = False
) -> None:
    """Forbidden unless the request carries the person's CSRF token: always for a form (a
    proxy that signs people in keeps its own cookie, which a browser sends along), and for
    the API when signed in by the dev cookie."""
    if not (form or person.by_cookie):
        return
    if token is None or not hmac.compare_digest(token, csrf_token(console, person)):
        raise Forbidden("missing or wrong CSRF token")
