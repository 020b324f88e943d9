"""SMTP delivery against real loopback servers: which answers are outages, deferrals, refusals."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from consumers.dev.services import free_port
from consumers.notify.emails import MailSettings, render
from consumers.notify.smtp import (
    SmtpDeferred,
    SmtpRefused,
    SmtpTarget,
    SmtpUnavailable,
    send_sync,
)
from pipeline.settings import Settings
from tests.support.events import rejection_notice
from tests.support.smtp import ScriptedSmtp
from topics.specs import NOTIFICATIONS

SENDER = "erp@acme.example"
MAIL = MailSettings.from_settings(Settings(smtp_from=SENDER))
RECIPIENT = "pat@acme.example"


@pytest.fixture
def server() -> Iterator[ScriptedSmtp]:
    yield from _server()


@pytest.fixture
def ascii_server() -> Iterator[ScriptedSmtp]:
    """A server that does not offer SMTPUTF8 (internationalized addresses)."""
    yield from _server(enable_SMTPUTF8=False)


def _server(**options: object) -> Iterator[ScriptedSmtp]:
    running = ScriptedSmtp(**options).start()
    try:
        yield running
    finally:
        running.stop()


def deliver(target: SmtpTarget, to: str = RECIPIENT, sender: str = SENDER) -> None:
    event = NOTIFICATIONS.adapter.validate_python(rejection_notice(to=to))
    send_sync(target, render(event, MAIL), sender, event.payload.to)


def test_accepted(server: ScriptedSmtp) -> None:
    deliver(server.target())
    assert len(server.messages(RECIPIENT)) == 1


@pytest.mark.parametrize("answer", ["450 4.2.1 mailbox unavailable", "452 4.2.2 over quota"])
def test_a_recipient_deferred_while_others_are_accepted_is_deferred_not_an_outage(
    server: ScriptedSmtp, answer: str
) -> None:
    """The server works (it takes other recipients): only this message waits, for a while."""
    server.per_recipient[RECIPIENT] = answer
    with pytest.raises(SmtpDeferred) as deferred:
        deliver(server.target())
    assert (deferred.value.command, deferred.value.code) == ("RCPT TO", int(answer[:3]))
    assert answer in str(deferred.value)
    assert server.messages() == []  # asking about another recipient sent nothing


def test_a_message_deferred_at_data_is_deferred(server: ScriptedSmtp) -> None:
    server.data = "451 4.7.1 try this one later"
    with pytest.raises(SmtpDeferred) as deferred:
        deliver(server.target())
    assert (deferred.value.command, deferred.value.code) == ("DATA", 451)


@pytest.mark.parametrize(
    ("command", "answer"),
    [
        ("rcpt", "451 4.3.0 temporary lookup failure"),  # to every recipient
        ("mail", "451 4.3.0 try later"),
        ("mail", "452 4.3.1 insufficient system storage"),
        ("one-rcpt", "421 4.3.2 service shutting down"),
        ("data", "421 4.3.2 service shutting down"),
    ],
)
def test_a_server_that_cannot_take_any_message_is_an_outage(
    server: ScriptedSmtp, command: str, answer: str
) -> None:
    if command == "one-rcpt":
        server.per_recipient[RECIPIENT] = answer
    else:
        setattr(server, command, answer)
    with pytest.raises(SmtpUnavailable):
        deliver(server.target())


@pytest.mark.parametrize(
    ("rcpt", "data"),
    [("550 5.1.1 no such user", "250 OK"), ("250 OK", "554 5.6.0 content refused")],
)
def test_permanent_answers_are_refused(server: ScriptedSmtp, rcpt: str, data: str) -> None:
    server.rcpt, server.data = rcpt, data
    with pytest.raises(SmtpRefused) as refused:
        deliver(server.target())
    assert refused.value.code in (550, 554)


def test_a_message_larger_than_the_server_ever_takes_is_refused() -> None:
    """aiosmtpd answers MAIL FROM ... SIZE=n with 552 above its limit (RFC 1870): no retry
    makes the message smaller, so it is refused rather than retried as an outage forever."""
    for small in _server(data_size_limit=200):
        with pytest.raises(SmtpRefused) as refused:
            deliver(small.target())
        assert refused.value.code == 552


def test_no_server_is_retried() -> None:
    with pytest.raises(SmtpUnavailable):
        deliver(SmtpTarget("127.0.0.1", free_port(), timeout_s=5))


def test_a_421_greeting_is_an_outage() -> None:
    """A server that answers the connection with 421 (too busy, shutting down)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def greet_and_close() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.sendall(b"421 4.3.2 too busy, try later\r\n")

        greeter = threading.Thread(target=greet_and_close, daemon=True)
        greeter.start()
        with pytest.raises(SmtpUnavailable, match="421"):
            deliver(SmtpTarget("127.0.0.1", listener.getsockname()[1], timeout_s=5))
        greeter.join(5)


def test_failed_login_is_retried_and_the_password_is_not_in_the_error(
    server: ScriptedSmtp,
) -> None:
    with_login = SmtpTarget(
        "127.0.0.1", server.port, username="mailer", password=SecretStr("hunter2"), timeout_s=5
    )
    with pytest.raises(SmtpUnavailable) as failed:
        deliver(with_login)
    assert "hunter2" not in str(failed.value)


def test_a_non_ascii_recipient_without_smtputf8_is_refused_not_retried_forever(
    ascii_server: ScriptedSmtp,
) -> None:
    """The server does not offer SMTPUTF8: that recipient can never be
    reached there, so the notice is refused (dead-lettered) instead of holding its partition."""
    with pytest.raises(SmtpRefused) as refused:
        deliver(ascii_server.target(), to="jos\u00e9@acme.example")
    assert "SMTPUTF8" in str(refused.value)


def test_a_non_ascii_sender_without_smtputf8_is_a_configuration_problem_retried(
    ascii_server: ScriptedSmtp,
) -> None:
    """Every message would fail the same way: an outage to fix and alert on, not a bad record."""
    with pytest.raises(SmtpUnavailable, match="SMTPUTF8"):
        deliver(ascii_server.target(), sender="erp@acm\u00e9.example")
