"""Sending one e-mail over SMTP (smtplib in a thread); failures: outage, deferred or refused."""

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

from pipeline.settings import ConfigurationError, Settings

Security = Literal["plain", "tls", "starttls"]

_SCHEMES: dict[str, tuple[Security, int]] = {
    "smtp": ("plain", 25),
    "smtp+starttls": ("starttls", 587),
    "smtps": ("tls", 465),
}


class SmtpUnavailable(RuntimeError):
    """The server is unavailable, for every message alike: try again later, without bound.

    Connection refused or reset, a timeout, TLS or authentication failing, a 421 anywhere, any
    refusal of the greeting, EHLO or MAIL FROM, or a 4xx to every recipient.
    """


class SmtpDeferred(RuntimeError):
    """The server works but defers this message (a 4xx to its RCPT TO or DATA): try again a
    bounded number of times.

    `command` is `RCPT TO` or `DATA`; `code` the reply code (400-499, never 421).
    """

    def __init__(self, command: str, code: int, reason: str) -> None:
        super().__init__(f"{command} answered {code} {reason}")
        self.command, self.code = command, code


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
            raise ConfigurationError(
                "SMTP_URL is not set (run `erp-pipeline dev` for a local mail sink)"
            )
        try:
            return cls.parse(
                settings.smtp_url.get_secret_value(),
                password=settings.smtp_password,
                timeout_s=settings.smtp_timeout_s,
            )
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None

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
        try:
            client.send_message(message, from_addr=sender, to_addrs=[recipient])
        except smtplib.SMTPRecipientsRefused as exc:
            code, reason = _first_refusal(exc)
            if _is_deferral(code) and _defers_another_recipient(client, sender):
                raise SmtpUnavailable(
                    f"the server defers every recipient: {code} {_text(reason)}"
                ) from None
            raise
    finally:
        # The message is accepted once DATA is answered; a failing QUIT must not make the
        # caller think otherwise and send it again.
        with contextlib.suppress(smtplib.SMTPException, OSError):
            client.quit()
        client.close()


def _first_refusal(exc: smtplib.SMTPRecipientsRefused) -> tuple[int, bytes | str]:
    return next(iter(exc.recipients.values()), (451, b"recipient refused"))


def _is_deferral(code: int) -> bool:
    """A 4xx reply other than 421, which says the whole service is closing, not this message."""
    return 400 <= code < 500 and code != 421


def _defers_another_recipient(client: smtplib.SMTP, sender: str) -> bool:
    """Whether the server also defers a second recipient, the sender's own address.

    Asked after a 4xx to RCPT TO, in the same session, and reset before any DATA, so nothing is
    sent. A 2xx or 5xx answer means the server decides per recipient: it is this recipient that
    is deferred. A 4xx (its recipient lookup is down, its spool is full) or a broken connection
    means the server cannot take anyone now: an outage, not a reason to give this message up.
    """
    try:
        code, _ = client.mail(sender)
        if code == 250:
            code, _ = client.rcpt(sender)
            client.rset()
    except (smtplib.SMTPException, OSError):
        return True
    return 400 <= code < 500


def send_sync(target: SmtpTarget, message: EmailMessage, sender: str, recipient: str) -> None:
    """Deliver `message` to `recipient`.

    Raises only `SmtpUnavailable` (the server is unavailable), `SmtpDeferred` (this message is
    deferred) or `SmtpRefused` (this message is refused for good); returns once the server
    has accepted the message.
    """
    try:
        _deliver(target, message, sender, recipient)
    except smtplib.SMTPRecipientsRefused as exc:
        code, reason = _first_refusal(exc)
        if 500 <= code < 600:
            raise SmtpRefused(code, _text(reason)) from None
        if _is_deferral(code):
            raise SmtpDeferred("RCPT TO", code, _text(reason)) from None
        raise SmtpUnavailable(f"recipient answered {code} {_text(reason)}") from None
    except smtplib.SMTPDataError as exc:
        if 500 <= exc.smtp_code < 600:
            raise SmtpRefused(exc.smtp_code, _text(exc.smtp_error)) from None
        if _is_deferral(exc.smtp_code):
            raise SmtpDeferred("DATA", exc.smtp_code, _text(exc.smtp_error)) from None
        raise SmtpUnavailable(f"DATA answered {exc.smtp_code} {_text(exc.smtp_error)}") from None
    except smtplib.SMTPSenderRefused as exc:
        if exc.smtp_code == 552:
            # MAIL FROM carries the message's SIZE; 552 there says this message is larger than
            # the server ever takes (RFC 1870), which no retry changes.
            raise SmtpRefused(552, f"message too large: {_text(exc.smtp_error)}") from None
        raise SmtpUnavailable(
            f"{type(exc).__name__}: {exc.smtp_code} {_text(exc.smtp_error)}"
        ) from None
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
