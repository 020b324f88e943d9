"""The notifier: one e-mail per event on erp.notifications, sent over SMTP, recorded in a ledger.

For each record, in partition order:

1. decode it; bad bytes or a broken contract go to erp.dead-letters and the worker moves on;
2. claim it in the sent-ledger (`sending`); an event already `sent` or `failed` is skipped,
   which is what makes redelivery (and a second copy of the same event) send nothing;
3. send it over SMTP; while the server is down or defers (4xx) the record is retried with
   backoff and its offset is not committed, so nothing is lost; a permanent refusal (5xx on
   RCPT or DATA) is dead-lettered (stage `business_rule`) and recorded `failed`;
4. record `sent`, then commit the offset.

The remaining window is at-least-once: a crash after the server accepted the message but
before `sent` was recorded leaves the row at `sending`, and the next claim sends it again.
That retry carries the same Message-ID (derived from `event_id`), the same e-mail, so
mail software that de-duplicates on Message-ID shows it once; the ledger's `attempts`
counts such retries, and a warning is logged for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import uuid
from typing import Any

from aiokafka.errors import KafkaError

from consumers.notify.emails import MailSettings, Notification, render
from consumers.notify.ledger import LedgerUnavailable, SentLedger
from consumers.notify.ledger import Outcome as Recorded
from consumers.notify.smtp import SmtpRefused, SmtpTarget, SmtpUnavailable, send
from consumers.worker.runtime import Runtime, run_worker
from pipeline.kafka import make_consumer, make_producer, publish
from pipeline.metrics import Metrics
from pipeline.rules.refusals import refusal, refusal_for_contract_error
from pipeline.settings import Settings
from topics import ContractError, decode
from topics.events import EventRefused
from topics.payloads import RefusalStage
from topics.record import Record
from topics.specs import DEAD_LETTERS, NOTIFICATIONS

log = logging.getLogger(__name__)

GROUP = "erp-notifier"


class Outcome(enum.Enum):
    """What became of a record: DONE may be committed, RETRY must be consumed again."""

    DONE = "done"
    RETRY = "retry"


class Notifier:
    """Turns one consumed record into at most one e-mail (the ports are handed in)."""

    def __init__(
        self,
        settings: Settings,
        *,
        target: SmtpTarget,
        mail: MailSettings,
        ledger: SentLedger,
        producer: Any,
        stop: asyncio.Event,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings, self.target, self.mail = settings, target, mail
        self.ledger, self.producer, self.stop = ledger, producer, stop
        self.metrics = metrics or Metrics(process=False)
        # Events whose last attempt here was turned away before delivery: their next
        # attempt is an ordinary retry, not a possible duplicate worth a warning.
        self._not_delivered: set[uuid.UUID] = set()

    async def handle(self, record: Record) -> Outcome:
        """Process one record; never raises for bad input."""
        try:
            event: Notification = decode(record.value or b"", NOTIFICATIONS)
        except ContractError as exc:
            log.warning(
                "refused %s/%d@%d: %s", record.topic, record.partition, record.offset, exc.stage
            )
            return await self._dead_letter(refusal_for_contract_error(record, exc))
        try:
            message = render(event, self.mail)
        except (ValueError, KeyError) as exc:  # a header the policy would not write
            return await self._dead_letter(
                refusal(record, RefusalStage.BUSINESS_RULE, f"cannot render: {exc}", event=event)
            )
        try:
            claim = await self.ledger.claim(
                event_id=event.event_id,
                event_type=event.event_type,
                company_id=event.company_id,
                recipient=event.payload.to,
                message_id=str(message["Message-ID"]),
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
            )
        except LedgerUnavailable as exc:
            log.warning("sent-ledger unavailable, will retry: %s", exc)
            return Outcome.RETRY
        if claim is None:
            log.info("%s %s already handled; not sent again", event.event_type, event.event_id)
            self._count(event, "duplicate")
            return Outcome.DONE
        if claim.attempts > 1 and event.event_id not in self._not_delivered:
            log.warning(
                "%s %s: attempt %d (an earlier attempt may have been delivered)",
                event.event_type,
                event.event_id,
                claim.attempts,
            )
        try:
            await send(self.target, message, self.mail.sender.addr_spec, event.payload.to)
        except SmtpUnavailable as exc:
            log.warning("SMTP %s unavailable, will retry: %s", self.target.describe(), exc)
            self._not_delivered.add(event.event_id)
            return Outcome.RETRY
        except SmtpRefused as exc:
            log.warning(
                "%s %s refused by the mail server (%d)", event.event_type, event.event_id, exc.code
            )
            dead = refusal(
                record,
                RefusalStage.BUSINESS_RULE,
                f"mail server refused the recipient or message: {exc}",
                event=event,
            )
            # The dead letter goes first: once `failed` is recorded the event is never
            # looked at again, so the dead letter must already be durable.
            if await self._dead_letter(dead) is Outcome.RETRY:
                return Outcome.RETRY
            self._count(event, "failed")
            self._not_delivered.discard(event.event_id)
            return await self._record(event, "failed", str(exc))
        self._not_delivered.discard(event.event_id)
        log.info("sent %s %s", event.event_type, event.event_id)
        self._count(event, "sent")
        return await self._record(event, "sent")

    async def _record(
        self, event: Notification, outcome: Recorded, error: str | None = None
    ) -> Outcome:
        """Record the outcome, retrying until it is durable: re-sending is what we avoid."""
        delay = 0.2
        while True:
            try:
                await self.ledger.finish(event.event_id, outcome, error)
                return Outcome.DONE
            except LedgerUnavailable as exc:
                if self.stop.is_set():
                    return Outcome.RETRY
                log.warning("cannot record %s yet, retrying: %s", outcome, exc)
                await _sleep(self.stop, delay)
                delay = min(delay * 2, self.settings.notifier_retry_max_s)

    def _count(self, event: Notification, outcome: str) -> None:
        self.metrics.notifications.labels(event.event_type, outcome).inc()
        consumed = "processed" if outcome == "sent" else outcome
        self.metrics.events_consumed.labels(NOTIFICATIONS.name, consumed).inc()

    async def _dead_letter(self, dead: EventRefused) -> Outcome:
        try:
            await publish(self.producer, self.settings, DEAD_LETTERS, dead)
        except KafkaError as exc:
            log.warning("cannot publish dead letter, will retry: %s", exc)
            return Outcome.RETRY
        self.metrics.events_refused.labels(dead.payload.stage.value).inc()
        self.metrics.events_produced.labels(DEAD_LETTERS.name).inc()
        if dead.payload.stage in (RefusalStage.DECODE, RefusalStage.SCHEMA):
            self.metrics.events_consumed.labels(NOTIFICATIONS.name, "refused").inc()
        return Outcome.DONE


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, waking early when `stop` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def serve(settings: Settings, stop: asyncio.Event, runtime: Runtime | None = None) -> None:
    """Consume erp.notifications and send e-mails until `stop` is set."""
    target = SmtpTarget.from_settings(settings)
    mail = MailSettings.from_settings(settings)
    ledger = SentLedger(settings.require_database_url())
    producer = make_producer(settings)
    consumer = make_consumer(
        settings,
        NOTIFICATIONS.full_name(settings.erp_topic_prefix),
        group_id=settings.group(GROUP),
    )
    notifier = Notifier(
        settings,
        target=target,
        mail=mail,
        ledger=ledger,
        producer=producer,
        stop=stop,
        metrics=runtime.metrics if runtime else None,
    )
    if runtime is not None:
        runtime.watch_consumer(consumer, "erp-notifier")
        runtime.watch_database(settings.require_database_url())
    await producer.start()
    await consumer.start()
    log.info("notifier sending to %s as %s", target.describe(), mail.sender)
    delay = 0.5
    try:
        while not stop.is_set():
            retry = False
            batches = await consumer.getmany(timeout_ms=500)
            for tp, messages in batches.items():
                for message in messages:
                    if await notifier.handle(Record.of(message)) is Outcome.RETRY:
                        # Consume this record again after the backoff; later records of the
                        # partition wait behind it so that nothing is skipped.
                        consumer.seek(tp, message.offset)
                        retry = True
                        break
                    try:
                        await consumer.commit({tp: message.offset + 1})
                        notifier.metrics.committed("erp-notifier")
                    except KafkaError as exc:  # a rebalance; the ledger absorbs redelivery
                        log.warning("offset commit failed: %s", exc)
            if retry:
                await _sleep(stop, delay)
                delay = min(delay * 2, settings.notifier_retry_max_s)
            elif batches:
                delay = 0.5
    finally:
        await consumer.stop()
        await producer.stop()
        await ledger.close()


def run(settings: Settings) -> None:
    """Worker entry point (`erp-pipeline run notifier`): runs until SIGTERM / SIGINT."""

    run_worker(settings, lambda runtime: serve(settings, runtime.stop, runtime))
