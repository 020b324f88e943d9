"""Who the console thinks is asking: bearer tokens, proxy headers, the dev sign-in, CSRF."""

from __future__ import annotations

import datetime as dt
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from consumers.console.app import build_app
from consumers.console.settings import ConsoleSettings
from consumers.dev import samples as se
from pipeline.settings import Settings
from tests.support.rules import event

KEY = "a-test-signing-key-of-32-bytes-at-least"


def client(**console: Any) -> TestClient:
    """The console app (no lifespan: no broker, no database) with the demo directory."""
    settings = Settings(database_url=SecretStr("postgresql://nobody@127.0.0.1:1/none"))
    app = build_app(settings, ConsoleSettings(**console), registry=CollectorRegistry())
    replica = app.state.console.replica
    replica.apply(event(se.approver_updated(se.APPROVER), 0))
    replica.apply(event(se.approver_updated(se.VIEWER, privileged=False), 0))
    return TestClient(app)


def token(key: str = KEY, minutes: int = 5, **claims: Any) -> dict[str, str]:
    exp = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)
    body = {"sub": "u-ana", "company_id": se.COMPANY, "exp": exp, **claims}
    return {"Authorization": f"Bearer {jwt.encode(body, key, algorithm='HS256')}"}


def test_a_signed_bearer_token_names_the_user_and_company() -> None:
    me = client(jwt_key=KEY).get("/api/v1/me", headers=token())
    assert me.status_code == 200, me.text
    assert me.json()["user"]["email"] == se.APPROVER["email"] and me.json()["may_decide"]
    assert me.json()["csrf_token"] is None


@pytest.mark.parametrize(
    "headers",
    [token(key="another-key-of-32-bytes-or-more-xx"), token(minutes=-5), {"Authorization": "x"}],
    ids=["wrong key", "expired", "not a bearer token"],
)
def test_a_token_that_cannot_be_trusted_is_401(headers: dict[str, str]) -> None:
    assert client(jwt_key=KEY).get("/api/v1/me", headers=headers).status_code == 401


def test_proxy_headers_count_only_when_configured() -> None:
    headers = {"X-User": "u-vic", "X-Company": se.COMPANY}
    assert client().get("/api/v1/me", headers=headers).status_code == 401
    trusting = client(user_header="X-User", company_header="X-Company")
    me = trusting.get("/api/v1/me", headers=headers).json()
    assert me["erp_tool_permission"] == "read_only" and me["may_decide"] is False


def test_a_user_of_another_company_is_unknown_there() -> None:
    trusting = client(user_header="X-User", company_header="X-Company")
    answer = trusting.get("/api/v1/me", headers={"X-User": "u-ana", "X-Company": "other-co"})
    assert answer.status_code == 403
    assert answer.json()["detail"] == "user u-ana is not in the company directory"


def test_the_dev_sign_in_is_off_unless_enabled() -> None:
    off = client()
    assert off.get("/signin").status_code == 404
    form = {"company_id": se.COMPANY, "user_id": "u-ana"}
    assert off.post("/signin", data=form).status_code == 404
    on = client(dev_signin=True)
    assert se.APPROVER["name"] in on.get("/signin").text
    assert on.post("/signin", data=form, follow_redirects=False).status_code == 303
    assert on.get("/api/v1/me").json()["csrf_token"]


def test_a_forged_sign_in_cookie_is_refused() -> None:
    on = client(dev_signin=True)
    forged = jwt.encode({"sub": "u-ana", "company_id": se.COMPANY}, "x" * 40, algorithm="HS256")
    on.cookies.set("erp_console_session", forged)
    assert on.get("/api/v1/me").status_code == 401


def test_empty_identity_variables_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    # a deploy recipe passing `CONSOLE_JWT_KEY=` (unset upstream) means no bearer tokens (not
    # an empty key, which breaks verifying), nor an empty header name as a configured proxy
    for name in ("JWT_KEY", "USER_HEADER", "COMPANY_HEADER", "JWT_AUDIENCE", "JWT_ISSUER"):
        monkeypatch.setenv(f"CONSOLE_{name}", "")
    console = ConsoleSettings()
    assert console.jwt_key is None and console.user_header is None
    assert console.jwt_audience is None and console.jwt_issuer is None
    settings = Settings(database_url=SecretStr("postgresql://nobody@127.0.0.1:1/none"))
    app = build_app(settings, console, registry=CollectorRegistry())
    app.state.console.replica.apply(event(se.approver_updated(se.APPROVER), 0))
    answer = TestClient(app).get("/api/v1/me", headers=token())
    assert answer.status_code == 401
