"""Helpers of the notifier's integration tests: publishing notifications, polling, reading mail."""

from __future__ import annotations

import asyncio
import email
import time
from collections.abc import Awaitable, Callable
from email import policy
from email.message import EmailMessage
from typing import Any, TypeVar

import psycopg

from consumers.dev.mailsink import MailSink, ReceivedMail
from pipeline.kafka import publish, read_all
from pipeline.settings import Settings
from topics import decode
from topics.events import EventRefused
from topics.specs import DEAD_LETTERS, NOTIFICATIONS

T = TypeVar("T")


async def eventually(
    check: Callable[[], Awaitable[T | None]], *, timeout_s: float = 30.0, what: str = "condition"
) -> T:
    """Poll `check` until it returns something truthy, or fail when the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def publish_notification(producer: Any, settings: Settings, event: dict[str, Any]) -> None:
    """Publish a notification event (given as a dict) the way the processor does."""
    await publish(producer, settings, NOTIFICATIONS, NOTIFICATIONS.adapter.validate_python(event))


def mail_to(sink: MailSink, recipient: str) -> list[ReceivedMail]:
    """Every message the sink received for `recipient`."""
    return [mail for mail in sink.messages() if recipient in mail.rcpt_tos]


async def one_mail_to(sink: MailSink, recipient: str, timeout_s: float = 30.0) -> EmailMessage:
    """Wait for the first message to `recipient` and parse it."""

    async def arrived() -> list[ReceivedMail]:
        return mail_to(sink, recipient)

    mails = await eventually(arrived, timeout_s=timeout_s, what=f"mail to {recipient}")
    parsed = email.message_from_bytes(mails[0].content, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def body_text(message: EmailMessage, kind: str = "plain") -> str:
    part = message.get_body((kind,))
    assert part is not None
    return str(part.get_content())


def ledger_row(settings: Settings, event_id: str) -> tuple[str, int] | None:
    """(status, attempts) of a notification in the sent-ledger."""
    with psycopg.connect(settings.require_database_url()) as conn:
        row = conn.execute(
            "SELECT status, attempts FROM notifications_sent WHERE event_id = %s", (event_id,)
        ).fetchone()
    return (str(row[0]), int(row[1])) if row else None


async def dead_letter_for(
    settings: Settings, *, event_id: str | None = None, source: tuple[str, int] | None = None
) -> EventRefused | None:
    """The dead letter that refused `event_id`, or the record at (key, offset)."""
    for record in await read_all(settings, DEAD_LETTERS):
        dead: EventRefused = decode(record.value, DEAD_LETTERS)
        if event_id is not None and dead.payload.refused_event_id == event_id:
            return dead
        where = (dead.payload.source.key, dead.payload.source.offset)
        if source is not None and where == source:
            return dead
    return None
