"""The notifier: one e-mail per event on erp.notifications, sent over SMTP, recorded in a ledger.

The notifier is the handler of the consume loop (`consumers.worker.loop`), which hands it one
record at a time per partition, in partition order, up to `NOTIFIER_CONCURRENCY` partitions at
once, and dead-letters what cannot be decoded. For each event:

1. claim it in the sent-ledger (`sending`); an event already `sent` or `failed` is skipped,
   which is what makes redelivery (and a second copy of the same event) send nothing;
2. send it over SMTP (`smtp.send_sync` sorts what can go wrong):
   - the server is unavailable (down, a timeout, TLS or login failing, a 421, a 4xx to MAIL
     FROM or to every recipient): an outage, RETRY without bound. The loop holds the record,
     and everything after it on its partition (each partition's e-mail finds the outage
     for itself and waits the same way), and hands it over again with a backoff capped
     at `NOTIFIER_RETRY_MAX_S`, never committing past it, so nothing is lost;
   - the server works but defers this message (a 4xx to its RCPT TO or DATA): the deferral is
     counted in the ledger row, so the count survives restarts, and the record is retried the
     same way until `NOTIFIER_MAX_ATTEMPTS` tries were deferred or `NOTIFIER_DEFER_MAX_S`
     passed since the first; then it is failed as below, and its partition goes on. Only
     its own partition waits meanwhile: the other partitions' e-mails are sent;
   - refused for good (5xx on RCPT or DATA, a message too large): dead-lettered (stage
     `business_rule`, the reason naming the reply code), then recorded `failed`;
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
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from consumers.notify.emails import MailSettings, Notification, render
from consumers.notify.ledger import Deferrals, LedgerUnavailable, SentLedger
from consumers.notify.ledger import Outcome as Recorded
from consumers.notify.smtp import (
    SmtpDeferred,
    SmtpRefused,
    SmtpTarget,
    SmtpUnavailable,
    send,
)
from consumers.worker.loop import consume
from consumers.worker.runtime import Runtime, run_worker
from consumers.worker.subscriber import Order, Outcome, Subscriber, dead_letter
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

T = TypeVar("T")


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
        """How the consume loop runs it: one record at a time per partition, in order, up to
        `NOTIFIER_CONCURRENCY` partitions at once; retries capped as configured.

        A send in progress cannot be taken back: a rebalance or a stop lets it finish (and be
        recorded) for as long as one SMTP exchange may take.
        """
        return Subscriber(
            NOTIFICATIONS,
            GROUP,
            handle=self.handle,
            concurrency=self.settings.notifier_concurrency,
            order=Order.PARTITION,
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
        if claim.deferrals.count >= self.settings.notifier_max_attempts:
            # Its last allowed try was deferred and counted, but the worker stopped before
            # recording the outcome: the bound holds across restarts, so no further try.
            return await self._give_up(event, record, claim.deferrals)
        try:
            await send(self.target, message, self.mail.sender.addr_spec, event.payload.to)
        except SmtpUnavailable as exc:
            log.warning("SMTP %s unavailable, will retry: %s", self.target.describe(), exc)
            self._not_delivered.add(event.event_id)
            return Outcome.RETRY
        except SmtpDeferred as exc:
            self._not_delivered.add(event.event_id)
            return await self._deferred(event, record, exc)
        except SmtpRefused as exc:
            log.warning(
                "%s %s refused by the mail server (%d)", event.event_type, event.event_id, exc.code
            )
            self._not_delivered.discard(event.event_id)
            return await self._fail(
                event, record, f"mail server refused the recipient or message: {exc}", str(exc)
            )
        self._not_delivered.discard(event.event_id)
        log.info("sent %s %s", event.event_type, event.event_id)
        self._count(event, "sent")
        return await self._record(event, "sent", Outcome.PROCESSED)

    async def _deferred(self, event: Notification, record: Record, exc: SmtpDeferred) -> Outcome:
        """Count the deferral in the ledger; retry, or give up once the bound is reached."""
        deferrals = await self._durably(
            functools.partial(self.ledger.defer, event.event_id, str(exc)), "a deferral"
        )
        if isinstance(deferrals, _Stopped):
            return Outcome.RETRY  # not counted, but not delivered either: tried again later
        if deferrals is None:
            log.info("%s %s recorded by another instance", event.event_type, event.event_id)
            return Outcome.DUPLICATE
        settings = self.settings
        if deferrals.exhausted(settings.notifier_max_attempts, settings.notifier_defer_max_s):
            return await self._give_up(event, record, deferrals)
        log.warning(
            "%s %s deferred by the mail server (%s %d), try %d of %d; will retry",
            event.event_type,
            event.event_id,
            exc.command,
            exc.code,
            deferrals.count,
            settings.notifier_max_attempts,
        )
        self.metrics.notification_deferrals.labels(event.event_type, "retry").inc()
        return Outcome.RETRY

    async def _give_up(self, event: Notification, record: Record, deferrals: Deferrals) -> Outcome:
        """A notification deferred past the bound: marked failed like a refused one."""
        log.warning(
            "%s %s deferred %d times over %.0f s; marked failed",
            event.event_type,
            event.event_id,
            deferrals.count,
            deferrals.for_s,
        )
        error = (
            f"deferred {deferrals.count} times over {deferrals.for_s:.0f} s"
            f" (NOTIFIER_MAX_ATTEMPTS={self.settings.notifier_max_attempts},"
            f" NOTIFIER_DEFER_MAX_S={self.settings.notifier_defer_max_s:g}),"
            f" last: {deferrals.last or 'unknown'}"
        )
        self._not_delivered.discard(event.event_id)
        outcome = await self._fail(event, record, f"mail server kept deferring: {error}", error)
        if outcome is Outcome.FAILED:
            self.metrics.notification_deferrals.labels(event.event_type, "failed").inc()
        return outcome

    async def _fail(self, event: Notification, record: Record, reason: str, error: str) -> Outcome:
        """Dead-letter the notification, then record it `failed` (never looked at again)."""
        dead = refusal(record, RefusalStage.BUSINESS_RULE, reason, event=event)
        # The dead letter goes first: once `failed` is recorded the event is never
        # looked at again, so the dead letter must already be durable.
        if await self._dead_letter(dead) is Outcome.RETRY:
            return Outcome.RETRY
        self._count(event, "failed")
        return await self._record(event, "failed", Outcome.FAILED, error)

    async def _record(
        self, event: Notification, recorded: Recorded, outcome: Outcome, error: str | None = None
    ) -> Outcome:
        """Record the outcome, retrying until it is durable: re-sending is what we avoid."""
        write = functools.partial(self.ledger.finish, event.event_id, recorded, error)
        done = await self._durably(write, recorded)
        return Outcome.RETRY if isinstance(done, _Stopped) else outcome

    async def _durably(self, write: Callable[[], Awaitable[T]], what: str) -> T | _Stopped:
        """`write()` to the ledger, retried with backoff until it succeeds, or the worker stops."""
        delay = 0.2
        while True:
            try:
                return await write()
            except LedgerUnavailable as exc:
                if self.stop.is_set():
                    return _STOPPED
                log.warning("cannot record %s yet, retrying: %s", what, exc)
                await _sleep(self.stop, delay)
                delay = min(delay * 2, self.settings.notifier_retry_max_s)

    def _count(self, event: Notification, outcome: str) -> None:
        self.metrics.notifications.labels(event.event_type, outcome).inc()

    async def _dead_letter(self, dead: EventRefused) -> Outcome:
        return await dead_letter(self.producer, self.settings, dead, self.metrics)


class _Stopped:
    """The worker stopped before a ledger write succeeded."""


_STOPPED = _Stopped()


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, waking early when `stop` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def serve(runtime: Runtime) -> None:
    """Composition root: SMTP, the sent ledger, the producer; sends e-mails until stopped."""
    settings = runtime.settings
    target = SmtpTarget.from_settings(settings)
    mail = MailSettings.from_settings(settings)
    runtime.watch_database(settings.require_database_url())
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
    log.info("notifier sending to %s as %s", target.describe(), mail.sender)
    await consume(runtime, notifier.subscriber(), producer, close=[ledger.close])


def run(settings: Settings) -> None:
    """Worker entry point (`erp-pipeline run notifier`): runs until SIGTERM / SIGINT."""
    run_worker(settings, serve)
