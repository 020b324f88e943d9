"""The notifier against a real SMTP server that defers: a bounded wait for one message, an
unbounded one for an unavailable server; the broker and PostgreSQL are real too."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest
from aiokafka.partitioner import murmur2
from pydantic import SecretStr

from consumers.notify.worker import serve
from consumers.worker.runtime import Runtime
from pipeline.kafka import make_producer
from pipeline.settings import Settings
from tests.support.events import CCO_ITEM, rejection_notice
from tests.support.notifier import (
    dead_letter_for,
    ledger_deferrals,
    ledger_row,
    publish_notification,
)
from tests.support.smtp import OK, ScriptedSmtp
from tests.support.waiting import eventually_async
from topics.specs import NOTIFICATIONS, key_of

MAX_ATTEMPTS = 4
DEFERRALS = "erp_pipeline_notification_deferrals_total"
NOTIFICATIONS_TOTAL = "erp_pipeline_notifications_total"


def someone(role: str = "user") -> str:
    return f"{role}-{uuid.uuid4().hex[:8]}@acme.example"


class InProcess:
    """The notifier running in the test's event loop; a test may stop it and start it again."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runtime = Runtime.local(settings)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start a new notifier (a new process, as far as it can tell: nothing kept in memory)."""
        self.runtime = Runtime.local(self.settings, asyncio.Event())
        self._task = asyncio.create_task(serve(self.runtime))

    async def restart(self, **settings: Any) -> None:
        """Stop it and start a new one with `settings` changed."""
        await self.stop()
        self.settings = self.settings.model_copy(update=settings)
        self.start()

    async def stop(self) -> None:
        """Stop it as SIGTERM does: what is in flight finishes, nothing past it is committed."""
        self.runtime.stop.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, 30)

    def count(self, name: str, **labels: str) -> float:
        """A counter of the running notifier's metrics (0 before its first increment)."""
        return self.runtime.metrics.registry.get_sample_value(name, labels) or 0.0

    def label_values(self) -> set[str]:
        """Every label value of every metric it exports."""
        return {
            value
            for metric in self.runtime.metrics.registry.collect()
            for sample in metric.samples
            for value in sample.labels.values()
        }


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedSmtp]:
    running = ScriptedSmtp().start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(autouse=True)
def answers_ok(server: ScriptedSmtp) -> Iterator[None]:
    """Every test starts, and leaves, with a server that accepts everything."""
    yield
    server.mail = server.rcpt = server.data = OK
    server.per_recipient.clear()
    server.start()


@pytest.fixture(scope="module")
async def notifier(settings: Settings, server: ScriptedSmtp) -> AsyncIterator[InProcess]:
    mine = settings.model_copy(
        update={
            "smtp_url": SecretStr(server.url),
            "smtp_from": "ERP Integrations <erp@acme.example>",
            "smtp_timeout_s": 5.0,
            "notifier_retry_max_s": 1.0,
            "notifier_max_attempts": MAX_ATTEMPTS,
            "notifier_defer_max_s": 600.0,
        }
    )
    running = InProcess(mine)
    running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def patient(notifier: InProcess) -> AsyncIterator[InProcess]:
    """The notifier, for one test, retrying a deferred notice far longer than a test lasts."""
    before = notifier.settings
    await notifier.restart(notifier_max_attempts=10_000, notifier_defer_max_s=3600.0)
    try:
        yield notifier
    finally:
        await notifier.restart(
            notifier_max_attempts=before.notifier_max_attempts,
            notifier_defer_max_s=before.notifier_defer_max_s,
        )


def partition_of(event: dict[str, Any]) -> int:
    """The partition the producer's default partitioner (murmur2, as Java's) gives the event."""
    key = key_of(NOTIFICATIONS.adapter.validate_python(event)).encode()
    return (murmur2(key) & 0x7FFFFFFF) % NOTIFICATIONS.partitions


def notice_on_another_partition(than: dict[str, Any], to: str) -> dict[str, Any]:
    """A rejection notice to `to` about an item whose key lands on another partition."""
    for n in range(100):
        item = {**CCO_ITEM, "id": f"cco-other-{n}"}
        event = rejection_notice(to=to, item=item)
        if partition_of(event) != partition_of(than):
            return event
    raise AssertionError("every key landed on one partition")


@pytest.fixture(scope="module")
async def producer(settings: Settings) -> AsyncIterator[Any]:
    client = make_producer(settings)
    await client.start()
    try:
        yield client
    finally:
        await client.stop()


async def test_a_recipient_deferred_forever_fails_after_the_bound_and_the_partition_goes_on(
    notifier: InProcess, producer: Any, server: ScriptedSmtp
) -> None:
    """Before the bound, the deferred notice held its partition for good: `next_to` never got
    its e-mail."""
    deferred_to, next_to = someone("deferred"), someone("next")
    server.per_recipient[deferred_to] = "450 4.2.1 mailbox unavailable"
    event = rejection_notice(to=deferred_to)
    failed_before = notifier.count(DEFERRALS, kind="RejectionNotice", outcome="failed")
    all_failed_before = notifier.count(
        NOTIFICATIONS_TOTAL, kind="RejectionNotice", outcome="failed"
    )
    await publish_notification(producer, notifier.settings, event)
    # The same item, so the same key and partition, published after it.
    await publish_notification(producer, notifier.settings, rejection_notice(to=next_to))

    await eventually_async(
        lambda: server.messages(next_to),
        timeout=45,
        interval=0.1,
        message="the next e-mail on the deferred notice's partition",
    )
    assert len(server.rcpts(deferred_to)) == MAX_ATTEMPTS
    assert server.messages(deferred_to) == []
    assert ledger_deferrals(notifier.settings, event["event_id"]) == ("failed", MAX_ATTEMPTS)
    dead = await eventually_async(
        lambda: dead_letter_for(notifier.settings, event_id=event["event_id"]),
        timeout=30,
        interval=0.1,
        message="the dead letter of the deferred notice",
    )
    assert dead.payload.stage == "business_rule"
    assert "450 4.2.1 mailbox unavailable" in dead.payload.error
    assert f"deferred {MAX_ATTEMPTS} times" in dead.payload.error
    assert notifier.count(DEFERRALS, kind="RejectionNotice", outcome="failed") == failed_before + 1
    assert (
        notifier.count(NOTIFICATIONS_TOTAL, kind="RejectionNotice", outcome="failed")
        == all_failed_before + 1
    )
    assert not [value for value in notifier.label_values() if "@" in value]


async def test_a_deferred_notice_holds_only_its_partition(
    patient: InProcess, producer: Any, server: ScriptedSmtp
) -> None:
    """Before, the notifier sent one e-mail at a time whatever the partition: a notice published
    after a deferred one, on another partition, waited until the deferred one was given up."""
    deferred_to, other_to = someone("deferred"), someone("other")
    server.per_recipient[deferred_to] = "450 4.2.1 mailbox unavailable"
    deferred = rejection_notice(to=deferred_to)
    other = notice_on_another_partition(deferred, other_to)
    await publish_notification(producer, patient.settings, deferred)
    await eventually_async(
        lambda: len(server.rcpts(deferred_to)) >= 2,
        timeout=45,
        interval=0.05,
        message="the deferred notice tried, and deferred, again",
    )
    await publish_notification(producer, patient.settings, other)

    await eventually_async(
        lambda: server.messages(other_to),
        timeout=30,
        interval=0.05,
        message="the e-mail on the other partition while the deferred one is retried",
    )
    assert ledger_deferrals(patient.settings, deferred["event_id"])[0] == "sending"  # type: ignore[index]
    assert server.messages(deferred_to) == []

    # Once the server takes the address, the deferred notice is sent, once, and nothing else
    # of its partition was lost behind it.
    del server.per_recipient[deferred_to]
    await eventually_async(
        lambda: (ledger_row(patient.settings, deferred["event_id"]) or ("",))[0] == "sent",
        timeout=30,
        interval=0.1,
        message="the deferred notice sent once the server takes it",
    )
    assert len(server.messages(deferred_to)) == 1
    assert len(server.messages(other_to)) == 1


@pytest.mark.parametrize(
    "outage",
    ["nothing listening", "every recipient deferred", "MAIL FROM deferred"],
)
async def test_an_unavailable_server_is_waited_for_past_the_bound_and_the_email_delivered(
    notifier: InProcess, producer: Any, server: ScriptedSmtp, outage: str
) -> None:
    to = someone()
    event = rejection_notice(to=to)
    if outage == "nothing listening":
        server.stop()
    elif outage == "every recipient deferred":
        server.rcpt = "451 4.3.0 temporary lookup failure"
    else:
        server.mail = "451 4.3.0 try later"
    await publish_notification(producer, notifier.settings, event)

    def tried_past_the_bound() -> bool:
        row = ledger_row(notifier.settings, event["event_id"])
        return row is not None and row[1] > MAX_ATTEMPTS + 1

    await eventually_async(
        tried_past_the_bound, timeout=45, interval=0.1, message="tries during the outage"
    )
    assert server.messages(to) == []
    server.mail = server.rcpt = OK
    if outage == "nothing listening":
        server.start()

    await eventually_async(
        lambda: server.messages(to), timeout=30, interval=0.1, message="the e-mail after the outage"
    )
    await eventually_async(
        lambda: ledger_deferrals(notifier.settings, event["event_id"]) == ("sent", 0),
        timeout=10,
        interval=0.1,
        message="recorded sent, with no deferral counted",
    )
    assert len(server.messages(to)) == 1
    assert (
        await asyncio.to_thread(dead_letter_for, notifier.settings, event_id=event["event_id"])
        is None
    )


async def test_a_restart_in_the_middle_of_the_deferred_tries_keeps_the_bound(
    notifier: InProcess, producer: Any, server: ScriptedSmtp
) -> None:
    """The tries are counted in the sent-ledger: a new notifier carries on from the count."""
    to = someone("restart")
    server.per_recipient[to] = "452 4.2.2 mailbox full"
    event = rejection_notice(to=to)
    await publish_notification(producer, notifier.settings, event)
    await eventually_async(
        lambda: server.rcpts(to), timeout=45, interval=0.02, message="the first try"
    )
    await notifier.stop()
    tried_before_restart = len(server.rcpts(to))
    assert 1 <= tried_before_restart < MAX_ATTEMPTS

    notifier.start()
    await eventually_async(
        lambda: ledger_row(notifier.settings, event["event_id"])[0] == "failed",  # type: ignore[index]
        timeout=45,
        interval=0.1,
        message="the deferred notice marked failed after the restart",
    )
    assert len(server.rcpts(to)) == MAX_ATTEMPTS  # not tried_before_restart + MAX_ATTEMPTS
    assert ledger_deferrals(notifier.settings, event["event_id"]) == ("failed", MAX_ATTEMPTS)
    dead = await eventually_async(
        lambda: dead_letter_for(notifier.settings, event_id=event["event_id"]),
        timeout=30,
        interval=0.1,
        message="the dead letter of the deferred notice",
    )
    assert "452 4.2.2 mailbox full" in dead.payload.error


async def test_a_notice_whose_last_try_was_counted_is_not_tried_again(
    notifier: InProcess, producer: Any, server: ScriptedSmtp
) -> None:
    """A worker that counted the last allowed deferral and died before recording `failed`:
    whoever gets the notice next fails it without another try (a crash loop stays bounded)."""
    to = someone("crashed")
    event = rejection_notice(to=to)
    with psycopg.connect(notifier.settings.require_database_url(), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO notifications_sent (event_id, event_type, company_id, recipient,"
            " message_id, status, source_topic, source_partition, source_offset, deferrals,"
            " first_deferred_at, error)"
            " VALUES (%s, 'RejectionNotice', 'acme-builders', %s, '<m@acme.example>', 'sending',"
            " %s, 0, 0, %s, now() - interval '1 minute', 'RCPT TO answered 450 try later')",
            (
                event["event_id"],
                to,
                NOTIFICATIONS.full_name(notifier.settings.erp_topic_prefix),
                MAX_ATTEMPTS,
            ),
        )
    await publish_notification(producer, notifier.settings, event)
    dead = await eventually_async(
        lambda: dead_letter_for(notifier.settings, event_id=event["event_id"]),
        timeout=45,
        interval=0.1,
        message="the dead letter of the notice",
    )
    assert "450 try later" in dead.payload.error
    await eventually_async(
        lambda: ledger_deferrals(notifier.settings, event["event_id"]) == ("failed", MAX_ATTEMPTS),
        timeout=10,
        interval=0.1,
        message="recorded failed",
    )
    assert server.rcpts(to) == []
