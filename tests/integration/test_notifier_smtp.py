"""SMTP delivery against real loopback servers: which answers are retried, which refused."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from pydantic import SecretStr

from consumers.dev.services import free_port
from consumers.notify.emails import MailSettings, render
from consumers.notify.smtp import SmtpRefused, SmtpTarget, SmtpUnavailable, send_sync
from pipeline.settings import Settings
from tests.support.events import rejection_notice
from topics.specs import NOTIFICATIONS

MAIL = MailSettings.from_settings(Settings(smtp_from="erp@acme.example"))


class Answers:
    """A server that answers RCPT and DATA as told."""

    def __init__(self, rcpt: str = "250 OK", data: str = "250 OK") -> None:
        self.rcpt, self.data = rcpt, data

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        envelope.rcpt_tos.append(address)
        return self.rcpt

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return self.data


@pytest.fixture
def server() -> Iterator[tuple[Answers, SmtpTarget]]:
    yield from _server()


@pytest.fixture
def ascii_server() -> Iterator[tuple[Answers, SmtpTarget]]:
    """A server that does not offer SMTPUTF8 (internationalized addresses)."""
    yield from _server(enable_SMTPUTF8=False)


def _server(**options: Any) -> Iterator[tuple[Answers, SmtpTarget]]:
    answers = Answers()
    controller = Controller(answers, hostname="127.0.0.1", port=free_port(), **options)
    controller.start()
    try:
        yield answers, SmtpTarget("127.0.0.1", controller.port, timeout_s=5)
    finally:
        controller.stop()


def deliver(target: SmtpTarget) -> None:
    event = NOTIFICATIONS.adapter.validate_python(rejection_notice())
    send_sync(target, render(event, MAIL), "erp@acme.example", event.payload.to)


def test_accepted(server: tuple[Answers, SmtpTarget]) -> None:
    deliver(server[1])


@pytest.mark.parametrize(
    ("rcpt", "data"), [("451 4.3.0 try later", "250 OK"), ("250 OK", "452 4.3.1 no room")]
)
def test_temporary_answers_are_retried(
    server: tuple[Answers, SmtpTarget], rcpt: str, data: str
) -> None:
    answers, target = server
    answers.rcpt, answers.data = rcpt, data
    with pytest.raises(SmtpUnavailable):
        deliver(target)


@pytest.mark.parametrize(
    ("rcpt", "data"),
    [("550 5.1.1 no such user", "250 OK"), ("250 OK", "554 5.6.0 content refused")],
)
def test_permanent_answers_are_refused(
    server: tuple[Answers, SmtpTarget], rcpt: str, data: str
) -> None:
    answers, target = server
    answers.rcpt, answers.data = rcpt, data
    with pytest.raises(SmtpRefused) as refused:
        deliver(target)
    assert refused.value.code in (550, 554)


def test_no_server_is_retried() -> None:
    with pytest.raises(SmtpUnavailable):
        deliver(SmtpTarget("127.0.0.1", free_port(), timeout_s=5))


def test_failed_login_is_retried_and_the_password_is_not_in_the_error(
    server: tuple[Answers, SmtpTarget],
) -> None:
    _, target = server
    with_login = SmtpTarget(
        target.host, target.port, username="mailer", password=SecretStr("hunter2"), timeout_s=5
    )
    with pytest.raises(SmtpUnavailable) as failed:
        deliver(with_login)
    assert "hunter2" not in str(failed.value)


def test_a_non_ascii_recipient_without_smtputf8_is_refused_not_retried_forever(
    ascii_server: tuple[Answers, SmtpTarget],
) -> None:
    """The server does not offer SMTPUTF8: that recipient can never be
    reached there, so the notice is refused (dead-lettered) instead of holding its partition."""
    event = NOTIFICATIONS.adapter.validate_python(rejection_notice(to="jos\u00e9@acme.example"))
    with pytest.raises(SmtpRefused) as refused:
        send_sync(ascii_server[1], render(event, MAIL), "erp@acme.example", event.payload.to)
    assert "SMTPUTF8" in str(refused.value)


def test_a_non_ascii_sender_without_smtputf8_is_a_configuration_problem_retried(
    ascii_server: tuple[Answers, SmtpTarget],
) -> None:
    """Every message would fail the same way: an outage to fix and alert on, not a bad record."""
    event = NOTIFICATIONS.adapter.validate_python(rejection_notice())
    with pytest.raises(SmtpUnavailable, match="SMTPUTF8"):
        send_sync(ascii_server[1], render(event, MAIL), "erp@acm\u00e9.example", event.payload.to)
