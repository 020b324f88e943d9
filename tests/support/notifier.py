"""The notifier under test: publishing notifications, reading what reached the mail sink."""

from __future__ import annotations

import asyncio
import email
from email import policy
from email.message import EmailMessage
from typing import Any

from consumers.dev.mailsink import MailSink, ReceivedMail
from pipeline.kafka import publish, read_all
from pipeline.settings import Settings
from tests.support.db import rows
from tests.support.kafka import events_of
from tests.support.waiting import eventually_async
from topics.events import EventRefused
from topics.specs import DEAD_LETTERS, NOTIFICATIONS


async def publish_notification(producer: Any, settings: Settings, event: dict[str, Any]) -> None:
    """Publish a notification event (given as a dict) the way the processor does."""
    await publish(producer, settings, NOTIFICATIONS, NOTIFICATIONS.adapter.validate_python(event))


def mail_to(sink: MailSink, recipient: str) -> list[ReceivedMail]:
    """Every message the sink received for `recipient`."""
    return [mail for mail in sink.messages() if recipient in mail.rcpt_tos]


def mail_ids(sink: MailSink) -> list[str]:
    """The notification event id of every message at the sink (one entry per message)."""
    found = []
    for mail in sink.messages():
        header = email.message_from_bytes(mail.content, policy=policy.default)["X-ERP-Notification"]
        if header:
            found.append(str(header).split()[-1])
    return found


async def one_mail_to(sink: MailSink, recipient: str, timeout: float = 30.0) -> EmailMessage:
    """Wait for the first message to `recipient` and parse it."""
    mails = await eventually_async(
        lambda: mail_to(sink, recipient),
        timeout=timeout,
        interval=0.1,
        message=f"mail to {recipient}",
    )
    parsed = email.message_from_bytes(mails[0].content, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def body_text(message: EmailMessage, kind: str = "plain") -> str:
    """The text of the message's `kind` ("plain" or "html") part."""
    part = message.get_body((kind,))
    assert part is not None
    return str(part.get_content())


def ledger_row(settings: Settings, event_id: str) -> tuple[str, int] | None:
    """(status, attempts) of a notification in the sent-ledger."""
    found = rows(
        settings, "SELECT status, attempts FROM notifications_sent WHERE event_id = %s", event_id
    )
    return (str(found[0][0]), int(found[0][1])) if found else None


def ledger_deferrals(settings: Settings, event_id: str) -> tuple[str, int] | None:
    """(status, deferrals) of a notification in the sent-ledger: the tries the server deferred."""
    found = rows(
        settings, "SELECT status, deferrals FROM notifications_sent WHERE event_id = %s", event_id
    )
    return (str(found[0][0]), int(found[0][1])) if found else None


def dead_letter_for(
    settings: Settings, *, event_id: str | None = None, source: tuple[str, int] | None = None
) -> EventRefused | None:
    """The dead letter that refused `event_id`, or the record at (key, offset)."""
    dead_letters: list[EventRefused] = events_of(
        asyncio.run(read_all(settings, DEAD_LETTERS)), DEAD_LETTERS
    )
    for dead in dead_letters:
        if event_id is not None and dead.payload.refused_event_id == event_id:
            return dead
        where = (dead.payload.source.key, dead.payload.source.offset)
        if source is not None and where == source:
            return dead
    return None
