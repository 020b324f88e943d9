"""Record in, dead letter or outcome out: the one place a record of an item topic is handled."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from pipeline.metrics import Metrics
from pipeline.processor import routing
from pipeline.processor.config import ITEM_TOPICS
from pipeline.processor.healing import Healing
from pipeline.processor.ports import Durable, Publish, Reroute
from pipeline.processor.store import ItemStore
from pipeline.rules.directory import Directory
from pipeline.rules.engine import react
from pipeline.rules.keys import key_refusal
from pipeline.rules.refusals import refusal, refusal_for_contract_error
from pipeline.rules.state import Incoming, ItemState
from pipeline.settings import Settings
from topics import ContractError, Envelope, TopicSpec
from topics.events import EventRefused, ItemRetrieved, ItemSubmitted
from topics.limits import MAX_RECORD_BYTES
from topics.payloads import RefusalStage
from topics.record import Record, decode_record
from topics.specs import DECISIONS, ITEM_ROUTES

#: A consumed record's headers, as faust's message has them.
Headers = Iterable[tuple[str, Any]] | Mapping[str, Any] | None

log = logging.getLogger(__name__)


class Step:
    """Each record of erp.submissions, erp.decisions and erp.export-results (read there or
    re-routed through erp.item-routes), one at a time."""

    def __init__(
        self,
        settings: Settings,
        store: ItemStore,
        healing: Healing,
        directory: Directory,
        sync_directory: Callable[[], Awaitable[object]],
        publish: Publish,
        durable: Durable,
        metrics: Metrics,
        reroute: Reroute,
    ) -> None:
        self.settings, self.store, self.healing = settings, store, healing
        self.directory, self.sync_directory = directory, sync_directory
        self.publish, self.durable, self.metrics = publish, durable, metrics
        self.reroute = reroute
        self._specs = {settings.topic(s.name): s for s in ITEM_TOPICS}
        self._routes = settings.topic(ITEM_ROUTES.name)

    async def consume(self, record: Record, headers: Headers = ()) -> None:
        """One record read by the items agent: handled if its partition's checkpoint expects it.

        A record of an item topic on the partition its key hashes to is handled here; one on
        another partition is re-published to the repartition topic (`reroute`); a copy read
        from the repartition topic is handled as the record its origin `headers` name.
        """
        if not await self.healing.next_in_line(record):
            return
        if record.topic != self._routes:
            spec = self._specs[record.topic]
            target = routing.reroute_to(record.key, record.partition, spec.partitions)
            await self.handle(record, reroute=target)
            return
        try:
            origin = routing.origin_of(record, headers)
            if origin.topic not in self._specs:
                raise ValueError(f"its origin {origin.topic!r} is not an item topic")
        except ValueError as exc:  # not a copy the pipeline wrote
            error = f"not a re-routed record of an item topic: {exc}"
            await self.commit(record, [refusal(record, RefusalStage.DECODE, error)])
            self._count(ITEM_ROUTES, "refused")
            return
        if self.store.routed_before(record.partition, origin):
            # a second copy of an original re-routed again after a crash: applied already
            self.store.advance(record)
            self._count(ITEM_ROUTES, "duplicate")
            return
        await self.handle(origin, at=record)

    async def handle(
        self, record: Record, *, at: Record | None = None, reroute: int | None = None
    ) -> None:
        """Decode, check the key, apply the rules, commit their outcome, count the record.

        Bad input is dead-lettered and never stops the agent; an unexpected error in the rules
        is dead-lettered at stage business_rule and logged. Either way the record is applied.
        `at`: the copy read from the repartition topic that stands for `record` (its
        checkpoint moves; dead letters and the rules see `record`'s coordinates). `reroute`:
        the partition of the repartition topic a valid `record` is re-published to instead of
        being applied here (`reroute_to`); records refused at decode or for their key are
        refused where they arrive.
        """
        at = record if at is None else at
        spec = self._specs[record.topic]
        try:
            decoded = decode_record(record, spec)
        except ContractError as exc:
            await self.commit(record, [refusal_for_contract_error(record, exc)], at=at)
            self._count(spec, "refused")
            return
        wrong_key = key_refusal(spec, record, decoded)
        if wrong_key is not None:
            # its item's state lives where the right key hashes to: never apply it here
            await self.commit(record, [wrong_key], at=at)
            self._count(spec, "refused")
            return
        if reroute is not None:
            await self._reroute(spec, record, decoded, reroute)
            return
        key = decoded.item_key
        if self._judges(spec, decoded, key):
            await self.sync_directory()  # judge against every change published before
        await self._publish_leftovers(key)
        try:
            state = self.store.state(key)
            self._inject_fault(key)
            outcome = react(state, Incoming(decoded, record), self.directory)
        except Exception as exc:
            log.exception("rules failed on %s offset %s", record.topic, record.offset)
            self._count(spec, "refused")
            error = f"unexpected error: {type(exc).__name__}: {exc}"
            dead = refusal(record, RefusalStage.BUSINESS_RULE, error, event=decoded)
            await self.commit(record, [dead], at=at)
            return
        new_state = None if outcome.duplicate else outcome.state
        await self.commit(record, outcome.events, key, new_state, at=at)
        refused = any(isinstance(e, EventRefused) for e in outcome.events)
        result = "duplicate" if outcome.duplicate else "refused" if refused else "processed"
        self._count(spec, result)

    async def commit(
        self,
        record: Record,
        events: Sequence[Envelope],
        key: str | None = None,
        state: ItemState | None = None,
        *,
        at: Record | None = None,
    ) -> None:
        """Apply a record's outcome in the one order that loses nothing, then mark it applied.

        Nothing downstream may answer an event (an export result answering ExportRequested)
        whose cause another instance could not restore after a crash, and no record may count
        as applied before what it caused is safe. So, top to bottom:

        1. store the item's new state and, beside it, the events it derived (its outbox);
        2. make them durable: flush the producer until the changelog acknowledged every write;
        3. only then publish the outbox, in order, each event acknowledged by the broker;
        4. clear the outbox. A crash before this leaves it for the item's next record (its
           redelivery at the latest) to publish first: same ids, so consumers drop repeats;
        5. last, advance the partition checkpoint, written after the state it covers, so a
           restored checkpoint never runs ahead of the states. For a re-routed copy (`at`,
           read from the repartition topic, standing for `record`) the copy's partition
           checkpoint moves, after a mark of the original's offset (`ItemStore.advance`).

        A new state with nothing derived skips 2-4: nothing leaves that could be answered.
        Without a new state (a dead letter, a duplicate) there is no cause to make durable
        first: the events are published directly, still before the checkpoint moves.
        """
        if key is not None and state is not None:
            if events:
                self.store.put_outbox(key, events)  # 1
            self.store.put_state(key, state)  # 1
            if events:
                await self.durable()  # 2
                for event in self.store.outbox(key) or []:  # 3
                    await self.publish(event)
                self.store.clear_outbox(key)  # 4
        else:
            for event in events:  # 3, with nothing stored to wait for
                await self.publish(event)
        if at is None or at is record:
            self.store.advance(record)  # 5
        else:
            self.store.advance(at, origin=record)  # 5

    async def _reroute(self, spec: TopicSpec, record: Record, event: Envelope, to: int) -> None:
        """Re-publish a valid record to its item's partition of the repartition topic; it
        counts as applied here once the copy is acknowledged (a crash in between re-routes it
        again: the copy's event_id makes the repeat a duplicate). One too big to carry its
        origin headers within Kafka's limit is refused, as an outcome too big to keep is."""
        size = routing.copy_bytes(record)
        if size > MAX_RECORD_BYTES:
            error = (
                f"too big to apply: re-routed to its item's partition, the record would take "
                f"{size} bytes (at most {MAX_RECORD_BYTES}); publish it on the partition "
                f"its key's murmur2 hash names"
            )
            dead = refusal(record, RefusalStage.BUSINESS_RULE, error, event=event)
            await self.commit(record, [dead])
            self._count(spec, "refused")
            return
        await self.reroute(record, to)
        self.metrics.processor_reroutes.labels(spec.name).inc()
        self.store.advance(record)

    async def _publish_leftovers(self, key: str) -> None:
        """Steps 3 and 4 of `commit` for an outbox a crash left behind, before anything new."""
        events = self.store.outbox(key)
        if events is None:
            return
        for event in events:
            await self.publish(event)
        self.store.clear_outbox(key)

    def _judges(self, spec: TopicSpec, event: Envelope, key: str) -> bool:
        """Whether the rules will judge who may act on this record: a decision, a retrieve, or
        a submission that releases decisions held for it (each judged when applied)."""
        if spec is DECISIONS or isinstance(event, ItemRetrieved):
            return True
        if not isinstance(event, ItemSubmitted):
            return False
        try:
            state = self.store.state(key)
        except Exception:  # the rules meet it again below and dead-letter the record
            return False
        return state is not None and bool(state.held)

    def _inject_fault(self, key: str) -> None:
        """Fail the rules on the item PROCESSOR_POISON_ITEM_ID names (fault injection)."""
        poison = self.settings.processor_poison_item_id
        if poison and key.rpartition(":")[2] == poison:
            raise RuntimeError("PROCESSOR_POISON_ITEM_ID names this item (fault injection)")

    def _count(self, spec: TopicSpec, result: str) -> None:
        self.metrics.events_consumed.labels(spec.name, result).inc()


__all__ = ["Step"]
