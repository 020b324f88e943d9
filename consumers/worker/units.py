"""Units of work of the consume loop: decode or dead-letter, hand over, retry, count, finish."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from consumers.worker.holds import Holds
from consumers.worker.offsets import OffsetTracker
from consumers.worker.subscriber import Consumed, Outcome, Subscriber, dead_letter
from pipeline.metrics import Metrics
from pipeline.rules.keys import key_refusal
from pipeline.rules.refusals import refusal, refusal_for_contract_error
from pipeline.settings import Settings
from topics import ContractError
from topics.events import EventRefused
from topics.payloads import RefusalStage
from topics.record import Record, decode_record

log = logging.getLogger(__name__)

#: Errors that say a service the worker needs is down (the broker, a database, a server), not
#: that the record is bad: the record is held and handed over again, never dead-lettered.
#: Anything else a handler raises is a data error: that one record is dead-lettered.
OUTAGES: tuple[type[BaseException], ...] = (
    KafkaError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    ConnectionError,
    TimeoutError,
)


class HandlerFailed(Exception):
    """A handler raised something other than an outage while handling the records it got."""

    def __init__(self, error: Exception) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.error = error


@dataclass(eq=False)
class Unit:
    """One record (or all of a fetch, for a batch handler) and its progress.

    `busy` while the handler (or a dead letter's publish) runs: a rebalance lets that finish
    for a grace period but cancels a unit that only waits. `done` once every record finished.
    """

    records: list[tuple[Any, Record]]
    #: A record a batch handler answered RETRY for, handed over again on its own.
    alone: bool = False
    pending: set[tuple[Any, int]] = field(init=False)
    busy: bool = False
    done: bool = False

    def __post_init__(self) -> None:
        self.pending = {(tp, record.offset) for tp, record in self.records}

    def partitions(self) -> set[Any]:
        """The partitions its records came from."""
        return {tp for tp, _ in self.records}

    def firsts(self) -> dict[Any, int]:
        """Per partition, the first offset not finished yet."""
        first: dict[Any, int] = {}
        for tp, offset in self.pending:
            first[tp] = min(offset, first.get(tp, offset))
        return first

    def describe(self, record: Record | None = None) -> str:
        """Where a record (by default every record of the unit) was read, for the log.

        A batch names each partition's offset range: a batch handler's error does not say
        which of its records caused it.
        """
        if record is not None or len(self.records) == 1:
            r = record or self.records[0][1]
            return f"{r.topic}/{r.partition}@{r.offset}"
        spans: dict[tuple[str, int], list[int]] = {}
        for _, r in self.records:
            spans.setdefault((r.topic, r.partition), []).append(r.offset)
        where = ", ".join(f"{t}/{p}@{min(o)}..{max(o)}" for (t, p), o in sorted(spans.items()))
        return f"a batch of {len(self.records)} records ({where})"


@dataclass
class Runner:
    """Works off units for the loop; counts and finishes each record once its outcome is final."""

    sub: Subscriber[Any]
    producer: AIOKafkaProducer
    settings: Settings
    metrics: Metrics
    tracker: OffsetTracker
    holds: Holds
    stopping: asyncio.Event
    failed: Callable[[], bool]
    #: Hand a record of a batch, answered RETRY, back to the loop to go on alone behind its key.
    requeue: Callable[[Any, Record], None] = lambda tp, record: None

    async def work(self, unit: Unit, previous: tuple[asyncio.Task[None], Unit] | None) -> None:
        """Wait for the unit's turn, then decode and key-check each record or dead-letter it,
        hand over."""
        if previous is not None:
            await asyncio.wait([previous[0]])
            if not previous[1].done:
                return  # an earlier record of the key is unfinished: nothing may overtake it
        for tp, offset in unit.firsts().items():
            if not await self.holds.wait(tp, offset, self.stopping):
                return
        if self.failed():
            return
        ready: list[tuple[Any, Consumed[Any]]] = []
        for tp, record in unit.records:
            try:
                event = decode_record(record, self.sub.spec)
            except ContractError as exc:
                log.warning("refused %s: %s: %s", unit.describe(record), exc.stage, exc.reason)
                if await self._dead_letter(unit, refusal_for_contract_error(record, exc)) is None:
                    return
                self._finish(unit, tp, record, Outcome.REFUSED)
                continue
            # the pipeline keys everything it writes with `key_of`: another key is not ours
            wrong_key = key_refusal(self.sub.spec, record, event)
            if wrong_key is None:
                ready.append((tp, Consumed(event, record)))
                continue
            log.warning("refused %s: schema: %s", unit.describe(record), wrong_key.payload.error)
            if await self._dead_letter(unit, wrong_key) is None:
                return
            self._finish(unit, tp, record, Outcome.REFUSED)
        if ready and not await self._hand_over(unit, ready):
            return
        unit.done = True

    async def _hand_over(self, unit: Unit, ready: list[tuple[Any, Consumed[Any]]]) -> bool:
        """Hand decoded records over until their outcome is final, and finish them.

        A handler that fails on a batch is handed its records one at a time, so that only
        the record it fails on is dead-lettered (stage business_rule, with the error) and the
        others are handled. False when the loop stopped first: the records stay unfinished.
        """
        events = [consumed for _, consumed in ready]
        try:
            outcome = await self._until_final(
                unit, functools.partial(self._guarded, events, alone=unit.alone)
            )
        except HandlerFailed as failed:
            if len(ready) > 1:
                for one in ready:
                    if not await self._hand_over(unit, [one]):
                        return False
                return True
            outcome = await self._dead_letter_failure(unit, ready[0][1], failed)
        if outcome is None:
            return False
        outcomes = [outcome] * len(ready) if isinstance(outcome, Outcome) else list(outcome)
        if len(outcomes) != len(ready):
            raise RuntimeError(f"{len(outcomes)} outcomes for {len(ready)} records")
        for (tp, consumed), this in zip(ready, outcomes, strict=True):
            if this is Outcome.RETRY:  # only per record: it goes on alone, behind its key
                unit.pending.discard((tp, consumed.record.offset))
                self.requeue(tp, consumed.record)
            else:
                self._finish(unit, tp, consumed.record, this)
        return True

    async def _guarded(
        self, events: list[Consumed[Any]], *, alone: bool = False
    ) -> Outcome | Sequence[Outcome]:
        """The handler's outcome; an outage is a RETRY, any other error a `HandlerFailed`."""
        try:
            return await self.sub.hand_over(events, alone=alone)
        except OUTAGES as exc:
            log.warning("%s: a service is unavailable (%r); will retry", self.sub.group, exc)
            return Outcome.RETRY
        except Exception as exc:
            raise HandlerFailed(exc) from exc

    async def _dead_letter_failure(
        self, unit: Unit, consumed: Consumed[Any], failed: HandlerFailed
    ) -> Outcome | None:
        """Dead-letter the one record a handler failed on; the worker goes on."""
        record = consumed.record
        log.error(
            "%s: handler failed on %s; dead-lettered",
            self.sub.group,
            unit.describe(record),
            exc_info=failed.error,
        )
        error = f"unexpected error: {failed}"
        dead = refusal(record, RefusalStage.BUSINESS_RULE, error, event=consumed.event)
        return await self._dead_letter(unit, dead)

    async def _dead_letter(self, unit: Unit, dead: EventRefused) -> Outcome | None:
        """Publish a dead letter until the broker has it (None: the loop stopped first)."""
        send = functools.partial(dead_letter, self.producer, self.settings, dead, self.metrics)
        outcome = await self._until_final(unit, send)
        assert outcome is None or isinstance(outcome, Outcome)
        return outcome

    async def _until_final(
        self, unit: Unit, attempt: Callable[[], Awaitable[Outcome | Sequence[Outcome]]]
    ) -> Outcome | Sequence[Outcome] | None:
        """`attempt()` until its outcome is final; a RETRY holds the unit and backs off.

        One outcome per record (a batch handler's answer) is final as it is. A batch
        handler's RETRY holds no partition: nothing else of it starts meanwhile anyway, and a
        record retried alone holds only its key. None when the loop stops during a backoff:
        the unit stays unfinished, uncommitted, and what waits behind its hold gives up too.
        """
        delay = min(self.sub.retry_base_s, self.sub.retry_max_s)
        held: dict[Any, int] = {}
        try:
            while True:
                unit.busy = True
                try:
                    outcome = await attempt()
                finally:
                    unit.busy = False
                if outcome is not Outcome.RETRY:
                    return outcome
                if not held and self.sub.handle_batch is None:
                    held = unit.firsts()
                    self.holds.hold(held)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), delay)
                if self.stopping.is_set():
                    return None
                delay = min(delay * 2, self.sub.retry_max_s)
        finally:
            if held and not self.stopping.is_set():
                self.holds.release(held)

    def _finish(self, unit: Unit, tp: Any, record: Record, outcome: Outcome) -> None:
        self.metrics.events_consumed.labels(self.sub.spec.name, outcome.value).inc()
        self.tracker.finished(tp, record.offset)
        unit.pending.discard((tp, record.offset))


async def settle(tasks: list[asyncio.Task[None]], grace_s: float) -> None:
    """Wait up to `grace_s` for `tasks` to end, cancel those still running, wait for them."""
    if not tasks:
        return
    pending = set(tasks)
    if grace_s > 0:
        _, pending = await asyncio.wait(tasks, timeout=grace_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
