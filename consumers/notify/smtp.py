"""Sending one e-mail over SMTP (smtplib in a thread), failures sorted into retry or refuse."""

from __future__ import annotations

import asyncio
import contextlib
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import SecretStr

from pipeline.settings import Settings

Security = Literal["plain", "tls", "starttls"]

_SCHEMES: dict[str, tuple[Security, int]] = {
    "smtp": ("plain", 25),
    "smtp+starttls": ("starttls", 587),
    "smtps": ("tls", 465),
}


class SmtpUnavailable(RuntimeError):
    """The message was not accepted this time (server down, 4xx, auth): try again later."""


class SmtpRefused(RuntimeError):
    """The server refused the message for good (5xx on RCPT or DATA): do not retry."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code


@dataclass(frozen=True)
class SmtpTarget:
    """Where and how to deliver: parsed from `SMTP_URL` (+ `SMTP_PASSWORD`)."""

    host: str
    port: int
    security: Security = "plain"
    username: str | None = None
    password: SecretStr | None = None
    timeout_s: float = 30.0

    @classmethod
    def parse(
        cls, url: str, *, password: SecretStr | None = None, timeout_s: float = 30.0
    ) -> SmtpTarget:
        """`smtp://[user[:pass]@]host[:port][?starttls=1]`, `smtp+starttls://…`, `smtps://…`."""
        parts = urlsplit(url)
        if parts.scheme not in _SCHEMES or not parts.hostname:
            raise ValueError(
                "SMTP_URL must look like smtp://[user[:password]@]host[:port] "
                "(or smtps://, smtp+starttls://)"
            )
        security, default_port = _SCHEMES[parts.scheme]
        if security == "plain" and parse_qs(parts.query).get("starttls", ["0"])[0] in ("1", "true"):
            security = "starttls"
        url_password = unquote(parts.password) if parts.password else None
        return cls(
            host=parts.hostname,
            port=parts.port or default_port,
            security=security,
            username=unquote(parts.username) if parts.username else None,
            password=SecretStr(url_password) if url_password else password,
            timeout_s=timeout_s,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpTarget:
        """The target configured by `SMTP_URL`, or a clear error when there is none."""
        if settings.smtp_url is None:
            raise RuntimeError("SMTP_URL is not set (run `erp-pipeline dev` for a local mail sink)")
        return cls.parse(
            settings.smtp_url.get_secret_value(),
            password=settings.smtp_password,
            timeout_s=settings.smtp_timeout_s,
        )

    def describe(self) -> str:
        """`smtp+starttls://user@host:port`, without the password: safe to log."""
        scheme = {"plain": "smtp", "tls": "smtps", "starttls": "smtp+starttls"}[self.security]
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}"


def _text(reason: bytes | str) -> str:
    return reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)


def _deliver(target: SmtpTarget, message: EmailMessage, sender: str, recipient: str) -> None:
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if target.security == "tls":
        client = smtplib.SMTP_SSL(
            target.host, target.port, timeout=target.timeout_s, context=context
        )
    else:
        client = smtplib.SMTP(target.host, target.port, timeout=target.timeout_s)
    try:
        if target.security == "starttls":
            client.starttls(context=context)
        if target.username:
            secret = target.password.get_secret_value() if target.password else ""
            client.login(target.username, secret)
        client.send_message(message, from_addr=sender, to_addrs=[recipient])
    finally:
        # The message is accepted once DATA is answered; a failing QUIT must not make the
        # caller think otherwise and send it again.
        with contextlib.suppress(smtplib.SMTPException, OSError):
            client.quit()
        client.close()


def send_sync(target: SmtpTarget, message: EmailMessage, sender: str, recipient: str) -> None:
    """Deliver `message` to `recipient`; raises only `SmtpUnavailable` or `SmtpRefused`."""
    try:
        _deliver(target, message, sender, recipient)
    except smtplib.SMTPRecipientsRefused as exc:
        code, reason = next(iter(exc.recipients.values()), (451, b"recipient refused"))
        if 500 <= code < 600:
            raise SmtpRefused(code, _text(reason)) from None
        raise SmtpUnavailable(f"recipient deferred: {code} {_text(reason)}") from None
    except smtplib.SMTPDataError as exc:
        if 500 <= exc.smtp_code < 600:
            raise SmtpRefused(exc.smtp_code, _text(exc.smtp_error)) from None
        deferred = f"message deferred: {exc.smtp_code} {_text(exc.smtp_error)}"
        raise SmtpUnavailable(deferred) from None
    except smtplib.SMTPNotSupportedError as exc:
        # An internationalized address on a server without SMTPUTF8. A recipient's can never
        # be delivered there: refused, that one notification fails. The sender's would fail
        # every message alike: a configuration problem, retried (and alerted on) like an outage.
        if not recipient.isascii():
            raise SmtpRefused(553, f"recipient {recipient!r}: {exc}") from None
        raise SmtpUnavailable(f"{type(exc).__name__}: {exc}") from None
    except smtplib.SMTPResponseException as exc:
        # Sender refused, authentication failed, …: a configuration or server problem that
        # holds for every message, so retrying (and alerting) beats dropping notifications.
        raise SmtpUnavailable(
            f"{type(exc).__name__}: {exc.smtp_code} {_text(exc.smtp_error)}"
        ) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise SmtpUnavailable(f"{type(exc).__name__}: {exc}") from None


async def send(target: SmtpTarget, message: EmailMessage, sender: str, recipient: str) -> None:
    """`send_sync` in a worker thread, so the event loop (and Kafka heartbeats) keep running."""
    await asyncio.to_thread(send_sync, target, message, sender, recipient)
