"""What a worker plugs into the consume loop: its `Subscriber`, the outcomes, the dead letter."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from pipeline.kafka import publish
from pipeline.metrics import Metrics
from pipeline.settings import Settings
from topics import Envelope, TopicSpec, encode, headers_for
from topics.events import EventRefused
from topics.record import Record
from topics.specs import DEAD_LETTERS, key_of

log = logging.getLogger(__name__)

E = TypeVar("E")


class Outcome(enum.Enum):
    """What became of a record handed to a handler. Every outcome but RETRY is final.

    The final ones are the `outcome` label of `events_consumed`, counted once per record.
    """

    PROCESSED = "processed"  # its side effect is durable
    DUPLICATE = "duplicate"  # it had been done before (a redelivery, or a second copy)
    FAILED = "failed"  # it cannot be done, and that is recorded (and dead-lettered)
    REFUSED = "refused"  # it was dead-lettered
    RETRY = "retry"  # not done: hold it (and what follows on its partition), try again later


class Order(enum.Enum):
    """What the loop keeps in order: a record starts only once the one before it finished.

    KEY: records of one key (on one partition); records of other keys pass a slow one.
    PARTITION: every record of a partition; a partition waiting on a record is not fetched
    from meanwhile, so that it takes one `concurrency` slot however many records wait on it.
    """

    KEY = "key"
    PARTITION = "partition"


@dataclass(frozen=True)
class Consumed(Generic[E]):
    """A decoded event and the record it came from (a batch handler gets a list of these)."""

    event: E
    record: Record


#: A batch handler: the records of a fetch in, one outcome for all or one per record out.
BatchHandler = Callable[[Sequence[Consumed[E]]], Awaitable[Outcome | Sequence[Outcome]]]


@dataclass(frozen=True)
class Subscriber(Generic[E]):
    """A worker as the consume loop sees it: where it reads, and what it does with an event.

    `handle` gets one record at a time, in `order` (by default records of
    one key in order, up to `concurrency` records at once; with `Order.PARTITION`, one record
    per partition at a time, up to `concurrency` partitions at once); `handle_batch` gets
    everything one fetch returned (at most `max_batch` records, None: no bound), once the
    previous batch is done. A subscriber with both hands each fetch to `handle_batch`, which
    may answer one outcome per record: a record answered RETRY is then handed to `handle`
    alone after the backoff, again until final, holding only its key (later records of that
    key wait behind it, in this and later fetches; other keys and the next fetch go on, while
    fewer than `concurrency` such records are in flight). After a RETRY the record is
    handed over again after `retry_base_s`, doubling up to `retry_max_s`. A rebalance lets a
    record that is being handled finish for `revoke_grace_s` (0: cancel it at once); stopping,
    `drain_grace_s`.
    `group` is the consumer group before the deployment prefix, and the metrics' label.
    A batch handler must be all-or-nothing (one transaction), or make a repeat of what it did
    harmless (a ledger): when it raises anything but an outage, the loop hands it the batch's
    records one at a time to find the one to dead-letter; after an outage, the whole batch again.
    """

    spec: TopicSpec
    group: str
    handle: Callable[[E, Record], Awaitable[Outcome]] | None = None
    handle_batch: BatchHandler[E] | None = None
    concurrency: int = 1
    order: Order = Order.KEY
    retry_base_s: float = 0.5
    retry_max_s: float = 30.0
    revoke_grace_s: float = 5.0
    drain_grace_s: float = 5.0
    max_batch: int | None = None

    def __post_init__(self) -> None:
        if self.handle is None and self.handle_batch is None:
            raise ValueError("a subscriber has `handle`, `handle_batch` or both")
        if self.concurrency < 1:
            raise ValueError("concurrency counts from 1")
        if self.max_batch is not None and self.max_batch < 1:
            raise ValueError("max_batch counts from 1")

    async def hand_over(
        self, ready: Sequence[Consumed[E]], *, alone: bool = False
    ) -> Outcome | Sequence[Outcome]:
        """Call the handler: with the batch, or its one record (`alone`: `handle` if there is one).

        A batch handler's answer is one outcome for all, or one per record in `ready`'s order.
        """
        if self.handle_batch is not None and (self.handle is None or not alone):
            return await self.handle_batch(ready)
        assert self.handle is not None
        [one] = ready
        return await self.handle(one.event, one.record)


async def dead_letter(
    producer: AIOKafkaProducer, settings: Settings, dead: EventRefused, metrics: Metrics
) -> Outcome:
    """Publish a dead letter: REFUSED once the broker has it, RETRY when it did not take it."""
    try:
        await publish(producer, settings, DEAD_LETTERS, dead, metrics=metrics)
    except KafkaError as exc:
        log.warning("cannot publish a dead letter, will retry: %r", exc)
        return Outcome.RETRY
    return Outcome.REFUSED


async def send(
    producer: AIOKafkaProducer,
    settings: Settings,
    spec: TopicSpec,
    event: Envelope,
    *,
    headers: Sequence[tuple[str, bytes]] = (),
) -> asyncio.Future[object]:
    """Queue one event for its topic as `pipeline.kafka.publish` writes it, without waiting.

    Returns the future of its acknowledgement: the caller flushes the producer, awaits the
    futures, and counts what was acknowledged (`Metrics.published`).
    """
    future: asyncio.Future[object] = await producer.send(
        spec.full_name(settings.erp_topic_prefix),
        encode(event),
        key=key_of(event).encode("utf-8"),
        headers=[*headers_for(event), *headers],
    )
    return future
