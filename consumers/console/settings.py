"""The console's settings (`CONSOLE_*` environment variables): where it listens, who it trusts."""

from __future__ import annotations

import secrets
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConsoleSettings(BaseSettings):
    """How people reach the console and how it knows who they are (see docs/console.md).

    Identity comes from, in this order: a signed bearer token (`CONSOLE_JWT_KEY` set), a
    trusted authenticating proxy's headers (`CONSOLE_USER_HEADER` and
    `CONSOLE_COMPANY_HEADER` set), the dev sign-in cookie (`CONSOLE_DEV_SIGNIN=true` only).
    With none configured nobody is signed in and every request answers 401.
    """

    model_config = SettingsConfigDict(env_prefix="CONSOLE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=0, le=65535)
    #: Header naming the signed-in user id, set by a trusted authenticating proxy.
    user_header: str | None = None
    #: Header naming the user's company, set by the same proxy.
    company_header: str | None = None
    #: Key verifying bearer tokens (HMAC secret, or a PEM public key for RS/ES algorithms).
    jwt_key: SecretStr | None = None
    jwt_algorithms: str = "HS256"
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    #: Claims naming the user id and the company in a bearer token.
    jwt_user_claim: str = "sub"
    jwt_company_claim: str = "company_id"
    #: A sign-in page to pick any directory user: for development only.
    dev_signin: bool = False
    #: Signs the dev sign-in cookie and the forms' CSRF tokens; random per process if unset.
    secret: SecretStr = Field(default_factory=lambda: SecretStr(secrets.token_urlsafe(32)))

    @field_validator(
        "user_header", "company_header", "jwt_key", "jwt_audience", "jwt_issuer", mode="before"
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        """An empty variable (`CONSOLE_JWT_KEY=` from a deploy recipe) means unset: never an
        empty token key or header name."""
        return None if isinstance(value, str) and not value.strip() else value

    def algorithms(self) -> list[str]:
        """The accepted token algorithms (comma-separated setting)."""
        return [name.strip() for name in self.jwt_algorithms.split(",") if name.strip()]
