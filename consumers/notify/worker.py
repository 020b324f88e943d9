"""The notifier: one e-mail per event on erp.notifications, sent over SMTP, recorded in a ledger.

The notifier is the handler of the consume loop (`consumers.worker.loop`), which hands it one
record at a time in partition order and dead-letters what cannot be decoded. For each event:

1. claim it in the sent-ledger (`sending`); an event already `sent` or `failed` is skipped,
   which is what makes redelivery (and a second copy of the same event) send nothing;
2. send it over SMTP; while the server is down or defers (4xx) the outcome is RETRY: the loop
   holds the record, and everything after it on its partition, and hands it over again with a
   backoff capped at `NOTIFIER_RETRY_MAX_S`, never committing past it, so nothing is lost; a
   permanent refusal (5xx on RCPT or DATA) is dead-lettered (stage `business_rule`) and
   recorded `failed`;
3. record `sent`; the loop then commits the offset.

The remaining window is at-least-once: a crash after the server accepted the message but
before `sent` was recorded leaves the row at `sending`, and the next claim sends it again.
That retry carries the same Message-ID (derived from `event_id`), the same e-mail, so
mail software that de-duplicates on Message-ID shows it once; the ledger's `attempts`
counts such retries, and a warning is logged for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from consumers.notify.emails import MailSettings, Notification, render
from consumers.notify.ledger import LedgerUnavailable, SentLedger
from consumers.notify.ledger import Outcome as Recorded
from consumers.notify.smtp import SmtpRefused, SmtpTarget, SmtpUnavailable, send
from consumers.worker.loop import consume
from consumers.worker.runtime import Runtime, run_worker
from consumers.worker.subscriber import Outcome, Subscriber, dead_letter
from pipeline.kafka import make_producer
from pipeline.metrics import Metrics
from pipeline.rules.refusals import refusal
from pipeline.settings import Settings
from topics.events import EventRefused
from topics.payloads import RefusalStage
from topics.record import Record
from topics.specs import NOTIFICATIONS

log = logging.getLogger(__name__)

GROUP = "erp-notifier"


class Notifier:
    """The handler of erp.notifications: the SMTP target, the sent-ledger and the producer."""

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

    def subscriber(self) -> Subscriber[Notification]:
        """How the consume loop runs it: one record at a time, retries capped as configured.

        A send in progress cannot be taken back: a rebalance or a stop lets it finish (and be
        recorded) for as long as one SMTP exchange may take.
        """
        return Subscriber(
            NOTIFICATIONS,
            GROUP,
            handle=self.handle,
            concurrency=1,
            retry_base_s=0.5,
            retry_max_s=self.settings.notifier_retry_max_s,
            revoke_grace_s=self.settings.smtp_timeout_s,
            drain_grace_s=self.settings.smtp_timeout_s,
        )

    async def handle(self, event: Notification, record: Record) -> Outcome:
        """Send one notification at most once; never raises for bad input."""
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
            return Outcome.DUPLICATE
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
            return await self._record(event, "failed", Outcome.FAILED, str(exc))
        self._not_delivered.discard(event.event_id)
        log.info("sent %s %s", event.event_type, event.event_id)
        self._count(event, "sent")
        return await self._record(event, "sent", Outcome.PROCESSED)

    async def _record(
        self, event: Notification, recorded: Recorded, outcome: Outcome, error: str | None = None
    ) -> Outcome:
        """Record the outcome, retrying until it is durable: re-sending is what we avoid."""
        delay = 0.2
        while True:
            try:
                await self.ledger.finish(event.event_id, recorded, error)
                return outcome
            except LedgerUnavailable as exc:
                if self.stop.is_set():
                    return Outcome.RETRY
                log.warning("cannot record %s yet, retrying: %s", recorded, exc)
                await _sleep(self.stop, delay)
                delay = min(delay * 2, self.settings.notifier_retry_max_s)

    def _count(self, event: Notification, outcome: str) -> None:
        self.metrics.notifications.labels(event.event_type, outcome).inc()

    async def _dead_letter(self, dead: EventRefused) -> Outcome:
        return await dead_letter(self.producer, self.settings, dead, self.metrics)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, waking early when `stop` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def serve(runtime: Runtime) -> None:
    """Composition root: SMTP, the sent ledger, the producer; sends e-mails until stopped."""
    settings = runtime.settings
    target = SmtpTarget.from_settings(settings)
    mail = MailSettings.from_settings(settings)
    ledger = SentLedger(settings.require_database_url())
    producer = make_producer(settings)
    notifier = Notifier(
        settings,
        target=target,
        mail=mail,
        ledger=ledger,
        producer=producer,
        stop=runtime.stop,
        metrics=runtime.metrics,
    )
    runtime.watch_database(settings.require_database_url())
    log.info("notifier sending to %s as %s", target.describe(), mail.sender)
    await consume(runtime, notifier.subscriber(), producer, close=[ledger.close])


def run(settings: Settings) -> None:
    """Worker entry point (`erp-pipeline run notifier`): runs until SIGTERM / SIGINT."""
    run_worker(settings, serve)
