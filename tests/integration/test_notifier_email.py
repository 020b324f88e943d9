"""The notifier against the real broker, PostgreSQL and an SMTP server on loopback."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from consumers.dev.mailsink import MailSink
from consumers.notify.worker import serve
from consumers.worker.runtime import Runtime
from pipeline.kafka import make_producer
from pipeline.settings import Settings
from tests.support.contract_cases import UNWRITABLE_IN_A_HEADER, with_value
from tests.support.events import CCO_ITEM, daily_summary, rejection_notice
from tests.support.notifier import (
    body_text,
    dead_letter_for,
    ledger_row,
    mail_to,
    one_mail_to,
    publish_notification,
)
from tests.support.waiting import eventually_async
from topics.specs import NOTIFICATIONS


def someone() -> str:
    return f"user-{uuid.uuid4().hex[:8]}@acme.example"


@pytest.fixture(scope="module")
def sink() -> Iterator[MailSink]:
    server = MailSink().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
async def notifier(settings: Settings, sink: MailSink) -> AsyncIterator[Settings]:
    """The notifier running in this event loop, sending to `sink`."""
    mine = settings.model_copy(
        update={
            "smtp_url": SecretStr(sink.url),
            "smtp_from": "ERP Integrations <erp@acme.example>",
            "smtp_timeout_s": 5.0,
            "notifier_retry_max_s": 2.0,
            "item_url_template": "https://pm.example/{company_id}/{item_type}/{item_id}",
        }
    )
    stop = asyncio.Event()
    task = asyncio.create_task(serve(Runtime.local(mine, stop)))
    try:
        yield mine
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@pytest.fixture(scope="module")
async def producer(settings: Settings) -> AsyncIterator[Any]:
    client = make_producer(settings)
    await client.start()
    try:
        yield client
    finally:
        await client.stop()


async def followed_by_marker(
    producer: Any, settings: Settings, sink: MailSink, item: dict[str, Any] = CCO_ITEM
) -> None:
    """Publish one more notice on the same partition and wait for it: everything published
    before it on that partition has then been handled (a duplicate would already be here)."""
    marker = someone()
    await publish_notification(producer, settings, rejection_notice(to=marker, item=item))
    await one_mail_to(sink, marker)


async def test_rejection_notice_sends_one_email_with_the_reason(
    notifier: Settings, producer: Any, sink: MailSink
) -> None:
    creator = someone()
    event = rejection_notice(to=creator, reason="Cost code 03-300 is closed for this job")
    await publish_notification(producer, notifier, event)
    message = await one_mail_to(sink, creator)
    assert message["Subject"] == (
        "acme-builders: ERP Commitment Change Order Rejection Notification"
    )
    assert message["To"] == creator
    assert "Cost code 03-300 is closed for this job" in body_text(message)
    assert "Cost code 03-300 is closed for this job" in body_text(message, "html")
    assert "https://pm.example/acme-builders/commitment_change_order/cco-300" in body_text(message)
    await followed_by_marker(producer, notifier, sink)
    assert len(mail_to(sink, creator)) == 1
    assert ledger_row(notifier, event["event_id"]) == ("sent", 1)


async def test_daily_summary_lists_every_waiting_item(
    notifier: Settings, producer: Any, sink: MailSink
) -> None:
    approver = someone()
    titles = ("Concrete foundations", "Structural steel", "Curtain wall", "Elevators")
    await publish_notification(producer, notifier, daily_summary(to=approver, titles=titles))
    message = await one_mail_to(sink, approver)
    assert message["Subject"] == "ERP Integrations Daily Summary"
    text, html = body_text(message), body_text(message, "html")
    for n, title in enumerate(titles):
        assert f"Commitment SC-{n}: {title}" in text
        assert f"Commitment SC-{n}: {title}" in html


async def test_a_capped_daily_summary_says_how_many_more_items_wait(
    notifier: Settings, producer: Any, sink: MailSink
) -> None:
    approver = someone()
    summary = daily_summary(to=approver, titles=("Concrete foundations",), more_items=37)
    await publish_notification(producer, notifier, summary)
    message = await one_mail_to(sink, approver)
    text, html = body_text(message), body_text(message, "html")
    assert "38 items of acme-builders awaiting acceptance" in text
    assert "and 37 more" in text and "and 37 more" in html


async def test_a_redelivered_notification_sends_one_email(
    notifier: Settings, producer: Any, sink: MailSink
) -> None:
    creator = someone()
    event = rejection_notice(to=creator)
    await publish_notification(producer, notifier, event)
    await publish_notification(producer, notifier, event)
    await one_mail_to(sink, creator)
    await followed_by_marker(producer, notifier, sink)
    assert len(mail_to(sink, creator)) == 1


async def test_a_title_cannot_add_a_bcc_header(
    notifier: Settings, producer: Any, sink: MailSink
) -> None:
    creator = someone()
    item = {
        **CCO_ITEM,
        # the contract refuses CR and LF in a title; these are Unicode's line separators
        "title": "Footings\u2028Bcc: x@evil.test",
        "number": "CCO-9\u2029Bcc: y@evil.test",
    }
    await publish_notification(producer, notifier, rejection_notice(to=creator, item=item))
    message = await one_mail_to(sink, creator)
    assert message["Bcc"] is None
    assert [mail.rcpt_tos for mail in mail_to(sink, creator)] == [(creator,)]
    await followed_by_marker(producer, notifier, sink)
    assert not [m for m in sink.messages() if any("evil.test" in r for r in m.rcpt_tos)]


async def test_an_smtp_outage_delays_but_loses_and_duplicates_nothing(
    notifier: Settings, producer: Any, sink: MailSink
) -> None:
    sink.stop()
    recipients = [someone() for _ in range(3)]
    events = [rejection_notice(to=to) for to in recipients]
    try:
        for event in events:
            await publish_notification(producer, notifier, event)

        def retried_for_a_while() -> bool:
            row = ledger_row(notifier, events[0]["event_id"])
            return row is not None and row[1] >= 6  # about 10 s of attempts with backoff

        await eventually_async(
            retried_for_a_while,
            timeout=40,
            interval=0.1,
            message="retries during the outage",
        )
        assert not any(mail_to(sink, to) for to in recipients)
    finally:
        sink.start()
    for to in recipients:
        await one_mail_to(sink, to, timeout=30)
    await followed_by_marker(producer, notifier, sink)
    assert [len(mail_to(sink, to)) for to in recipients] == [1, 1, 1]
    assert [ledger_row(notifier, e["event_id"])[0] for e in events] == ["sent"] * 3  # type: ignore[index]


async def test_a_refused_recipient_is_dead_lettered_and_the_next_one_is_sent(
    notifier: Settings, producer: Any, sink: MailSink
) -> None:
    event = rejection_notice(to="nobody@undeliverable.example")
    await publish_notification(producer, notifier, event)
    await followed_by_marker(producer, notifier, sink)

    dead = await eventually_async(
        lambda: dead_letter_for(notifier, event_id=event["event_id"]),
        timeout=30,
        interval=0.1,
        message="dead letter of the refused recipient",
    )
    assert dead.payload.stage == "business_rule"
    assert "550" in dead.payload.error
    assert ledger_row(notifier, event["event_id"]) == ("failed", 1)


@pytest.mark.parametrize("value", [b"\xff\xfe not json", b'{"event_type": "RejectionNotice"}'])
async def test_bad_input_is_dead_lettered_and_the_worker_keeps_going(
    notifier: Settings, producer: Any, sink: MailSink, value: bytes
) -> None:
    key = f"acme-builders:commitment_change_order:{CCO_ITEM['id']}"
    sent = await producer.send_and_wait(
        NOTIFICATIONS.full_name(notifier.erp_topic_prefix), value, key=key.encode()
    )
    await followed_by_marker(producer, notifier, sink)

    dead = await eventually_async(
        lambda: dead_letter_for(notifier, source=(key, sent.offset)),
        timeout=30,
        interval=0.1,
        message="dead letter of the bad record",
    )
    assert dead.payload.stage in ("decode", "schema")


@pytest.mark.parametrize(
    ("field", "address"),
    [("to", "ana..x@acme.example"), ("rejected_by.email", UNWRITABLE_IN_A_HEADER)],
)
async def test_an_address_the_mail_package_cannot_write_is_refused_at_schema_and_the_worker_goes_on(
    notifier: Settings, producer: Any, sink: MailSink, field: str, address: str
) -> None:
    event = with_value(rejection_notice(), f"payload.{field}", address)
    key = f"acme-builders:commitment_change_order:{CCO_ITEM['id']}"
    await producer.send_and_wait(
        NOTIFICATIONS.full_name(notifier.erp_topic_prefix),
        json.dumps(event).encode(),
        key=key.encode(),
    )
    await followed_by_marker(producer, notifier, sink)

    dead = await eventually_async(
        lambda: dead_letter_for(notifier, event_id=event["event_id"]),
        timeout=30,
        interval=0.1,
        message="dead letter of the unwritable address",
    )
    assert dead.payload.stage == "schema"
    assert f"payload.{field}" in dead.payload.error
    assert not mail_to(sink, address)
    assert ledger_row(notifier, event["event_id"]) is None
