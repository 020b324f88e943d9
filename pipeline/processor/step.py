"""Records in, dead letters or outcomes out: where each fetched batch of the item topics is
applied (`Step.consume_batch`), with one changelog flush and one publish flush per batch."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.metrics import Metrics
from pipeline.processor import routing
from pipeline.processor.config import ITEM_TOPICS
from pipeline.processor.healing import Healing
from pipeline.processor.ports import Durable, Scope, Send
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

#: The exit code of a processor stopped by `PROCESSOR_CRASH_AT` (fault injection).
CRASH_EXIT_CODE = 70


def no_scope(event: Any) -> contextlib.AbstractContextManager[object]:
    """The scope of a table that is a plain mapping: none."""
    return contextlib.nullcontext()


@dataclass(frozen=True)
class Input:
    """One fetched record: its headers, and `event`, the faust event it came in (the scope
    that table reads and writes made for it run in: faust picks the table partition from it)."""

    record: Record
    headers: Headers = ()
    event: Any = None


@dataclass
class Batch:
    """What one batch has decided, kept in memory until `Step.commit` writes it out.

    Item states and outboxes by item key (in the order the batch first touched each item),
    events not tied to a stored state (dead letters of refused records), re-routed copies,
    and per input partition the next expected offset and the checkpoint to write.
    """

    states: dict[str, ItemState] = field(default_factory=dict)
    #: item key -> the events waiting to be published, in order: what a crash left in its
    #: outbox first, then what this batch derived
    outboxes: dict[str, list[Envelope]] = field(default_factory=dict)
    #: items whose outbox this batch added events to (so it is written before the flush)
    fresh: set[str] = field(default_factory=set)
    #: item key -> the faust event the item's table writes are scoped to
    scopes: dict[str, Any] = field(default_factory=dict)
    #: item key -> its table (changelog) partition, for items with a new state
    partitions: dict[str, int] = field(default_factory=dict)
    loose: list[Envelope] = field(default_factory=list)
    copies: list[tuple[Record, int]] = field(default_factory=list)
    #: (topic, partition) -> next offset expected, as this batch has moved it
    expected: dict[tuple[str, int], int] = field(default_factory=dict)
    #: partitions whose rest of the batch waits (a gap was found: sought back)
    stopped: set[tuple[str, int]] = field(default_factory=set)
    #: table key -> (next offset, table partition, scope) of the checkpoints and re-route
    #: marks, in write order
    marks: dict[bytes, tuple[int, int, Any]] = field(default_factory=dict)
    #: (partition, origin topic, origin partition) -> next original offset expected
    routed: dict[tuple[int, str, int], int] = field(default_factory=dict)
    directory_synced: bool = False
    #: records fetched in the batch (skipped ones included)
    records: int = 0
    #: (topic, outcome) of each record handled, counted once the batch is committed; the
    #: outcome "rerouted" counts in `processor_reroutes` instead
    counts: list[tuple[str, str]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Nothing to write or send: every record was skipped."""
        return not (self.states or self.outboxes or self.loose or self.copies or self.marks)


class Step:
    """Each batch of records of erp.submissions, erp.decisions and erp.export-results (read
    there or re-routed through erp.item-routes), applied together."""

    def __init__(
        self,
        settings: Settings,
        store: ItemStore,
        healing: Healing,
        directory: Directory,
        sync_directory: Callable[[], Awaitable[object]],
        send: Send,
        durable: Durable,
        metrics: Metrics,
        scope: Scope = no_scope,
    ) -> None:
        self.settings, self.store, self.healing = settings, store, healing
        self.directory, self.sync_directory = directory, sync_directory
        self.send, self.durable, self.metrics = send, durable, metrics
        self.scope = scope
        #: On a broker that reports a partition's end as its last batch's first offset + 1,
        #: the last changelog record of each partition a batch touched goes alone.
        self.seal = settings.kafka_single_record_batches
        self._specs = {settings.topic(s.name): s for s in ITEM_TOPICS}
        self._routes = settings.topic(ITEM_ROUTES.name)

    async def consume(self, record: Record, headers: Headers = ()) -> None:
        """One record read by the items agent: a batch of one (see `consume_batch`)."""
        await self.consume_batch([Input(record, headers)])

    async def handle(self, record: Record) -> None:
        """One record of an item topic on its home partition, past every check of its
        partition's checkpoint: decoded, judged and committed as a batch of one."""
        batch = Batch()
        with self.scope(None):
            await self._handle(batch, record, record, None, None)
        await self.commit(batch)

    async def consume_batch(self, inputs: Sequence[Input]) -> None:
        """A batch of records read by the items agent, applied in log order per partition.

        Each record is handled if its partition's checkpoint (as the batch has moved it)
        expects it: a record of an item topic on the partition its key hashes to is applied;
        one on another partition is re-published to the repartition topic; a copy read from
        the repartition topic is applied as the record its origin headers name. A record past
        the checkpoint (a gap) seeks the partition back, and the rest of that partition's
        records in the batch wait for the re-fetch. The rules see the states the batch's
        earlier records left. Then everything is written and sent at once (`commit`).

        Raises what the broker raises when a flush or a send fails for good: nothing past
        the failure counts as applied, the batch is applied again from its checkpoints.
        """
        batch = Batch(records=len(inputs))
        for one in inputs:
            record = one.record
            tp = (record.topic, record.partition)
            if tp in batch.stopped:
                continue
            with self.scope(one.event):
                expected = batch.expected.get(tp)
                if not await self.healing.next_in_line(record, expected):
                    if expected is None:
                        expected = self.store.checkpoint(*tp)
                    if expected is None or record.offset >= expected:
                        batch.stopped.add(tp)  # a gap: sought back, the rest waits
                    continue
                batch.expected[tp] = record.offset + 1
                await self._route(batch, one)
        await self.commit(batch)

    async def _route(self, batch: Batch, one: Input) -> None:
        record = one.record
        if record.topic != self._routes:
            spec = self._specs[record.topic]
            target = routing.reroute_to(record.key, record.partition, spec.partitions)
            await self._handle(batch, record, record, target, one.event)
            return
        try:
            origin = routing.origin_of(record, one.headers)
            if origin.topic not in self._specs:
                raise ValueError(f"its origin {origin.topic!r} is not an item topic")
        except ValueError as exc:  # not a copy the pipeline wrote
            error = f"not a re-routed record of an item topic: {exc}"
            batch.loose.append(refusal(record, RefusalStage.DECODE, error))
            self._advance(batch, record, record, one.event)
            self._count(batch, ITEM_ROUTES, "refused")
            return
        if self._routed_before(batch, record.partition, origin):
            # a second copy of an original re-routed again after a crash: applied already
            self._advance(batch, record, record, one.event)
            self._count(batch, ITEM_ROUTES, "duplicate")
            return
        await self._handle(batch, origin, record, None, one.event)

    async def _handle(
        self, batch: Batch, record: Record, at: Record, reroute: int | None, event: Any
    ) -> None:
        """Decode, check the key, apply the rules in memory, note their outcome in `batch`.

        Bad input is dead-lettered and never stops the agent; an unexpected error in the rules
        dead-letters that record alone (at stage business_rule, logged). Either way the record
        is applied. `at`: the record whose partition checkpoint moves (a copy read from the
        repartition topic standing for `record`; dead letters and the rules see `record`'s
        coordinates). `reroute`: the partition of the repartition topic a valid `record` is
        re-published to instead of being applied here (`reroute_to`); records refused at
        decode or for their key are refused where they arrive.
        """
        spec = self._specs[record.topic]
        try:
            decoded = decode_record(record, spec)
        except ContractError as exc:
            batch.loose.append(refusal_for_contract_error(record, exc))
            self._advance(batch, at, record, event)
            self._count(batch, spec, "refused")
            return
        wrong_key = key_refusal(spec, record, decoded)
        if wrong_key is not None:
            # its item's state lives where the right key hashes to: never apply it here
            batch.loose.append(wrong_key)
            self._advance(batch, at, record, event)
            self._count(batch, spec, "refused")
            return
        if reroute is not None:
            self._reroute(batch, spec, record, decoded, reroute, event)
            return
        key = decoded.item_key
        state: ItemState | None = None
        unreadable: Exception | None = None
        try:
            state = self._state(batch, key, event)
        except Exception as exc:  # a stored state the rules cannot read: dead-lettered below
            unreadable = exc
        if self._judges(spec, decoded, state) and not batch.directory_synced:
            await self.sync_directory()  # judge against every change published before
            batch.directory_synced = True
        try:
            if unreadable is not None:
                raise unreadable
            self._inject_fault(key)
            outcome = react(state, Incoming(decoded, record), self.directory)
        except Exception as exc:
            log.exception("rules failed on %s offset %s", record.topic, record.offset)
            self._count(batch, spec, "refused")
            error = f"unexpected error: {type(exc).__name__}: {exc}"
            batch.loose.append(refusal(record, RefusalStage.BUSINESS_RULE, error, event=decoded))
            self._advance(batch, at, record, event)
            return
        if not outcome.duplicate and outcome.state is not None:
            batch.states[key] = outcome.state
            batch.scopes[key] = event
            batch.partitions[key] = at.partition
            if outcome.events:
                batch.outboxes.setdefault(key, []).extend(outcome.events)
                batch.fresh.add(key)
        else:
            batch.loose.extend(outcome.events)
        self._advance(batch, at, record, event)
        refused = any(isinstance(e, EventRefused) for e in outcome.events)
        result = "duplicate" if outcome.duplicate else "refused" if refused else "processed"
        self._count(batch, spec, result)

    def _state(self, batch: Batch, key: str, event: Any) -> ItemState | None:
        """The item's state as the batch has left it; the first time the batch touches the
        item, also what a crash left in its outbox (published first, before anything new)."""
        if key in batch.states:
            return batch.states[key]
        if key not in batch.outboxes:
            leftovers = self.store.outbox(key)
            if leftovers is not None:
                batch.outboxes[key] = list(leftovers)
                batch.scopes[key] = event
        return self.store.state(key)

    def _advance(self, batch: Batch, at: Record, record: Record, event: Any) -> None:
        """Note that `at` was applied: its partition checkpoint moves past it, and for a copy
        read from the repartition topic, first the mark of the original it stands for."""
        if at is not record:
            mark = (at.partition, record.topic, record.partition)
            batch.routed[mark] = record.offset + 1
            routed = self.store.routed_key(at, record)
            batch.marks[routed] = (record.offset + 1, at.partition, event)
        key = self.store.checkpoint_key(at)
        batch.marks.pop(key, None)  # re-inserted last: written after this record's mark
        batch.marks[key] = (at.offset + 1, at.partition, event)

    def _routed_before(self, batch: Batch, partition: int, origin: Record) -> bool:
        expected = batch.routed.get((partition, origin.topic, origin.partition))
        if expected is not None:
            return origin.offset < expected
        return self.store.routed_before(partition, origin)

    def _reroute(
        self, batch: Batch, spec: TopicSpec, record: Record, event: Envelope, to: int, scope: Any
    ) -> None:
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
            batch.loose.append(refusal(record, RefusalStage.BUSINESS_RULE, error, event=event))
            self._count(batch, spec, "refused")
        else:
            batch.copies.append((record, to))
            batch.counts.append((spec.name, "rerouted"))
        self._advance(batch, record, record, scope)

    async def commit(self, batch: Batch) -> None:
        """Write out a batch's outcome in the one order that loses nothing, then mark its
        records applied.

        Nothing downstream may answer an event (an export result answering ExportRequested)
        whose cause another instance could not restore after a crash, and no record may count
        as applied before what it caused is safe. So, top to bottom:

        1. store each item's new state and, beside it, its outbox: what a crash left there
           and what the batch derived, in order;
        2. make them durable: one producer flush, until the changelog acknowledged every write
           (skipped when no item has new events: nothing leaves that could be answered). With
           `seal`, the last state written per changelog partition is then written again,
           alone in its batch, and flushed: the broker's reported end covers every state
           before anything derived from them is published;
        3. only then send every outbox, the dead letters and the re-routed copies, without
           waiting for each, and wait once until the broker acknowledged them all (an
           item's events go in order to one partition of each topic, which Kafka keeps);
        4. clear the outboxes. A crash before this leaves them for the item's next record
           (its redelivery at the latest) to publish first: same ids, so consumers drop
           repeats;
        5. last, advance the partition checkpoints to the batch's last applied offset + 1
           (for a re-routed copy, after a mark of the original's offset), written after the
           states they cover, so a restored checkpoint never runs ahead of the states. With
           `seal` (brokers that report a partition's end as its last batch's first offset
           + 1), the last of these writes per changelog partition goes after a flush, alone
           in its batch, and is flushed too: the changelog's end stays exact.
        """
        for key, events in batch.outboxes.items():
            if key in batch.fresh:
                with self.scope(batch.scopes[key]):
                    self.store.put_outbox(key, events)  # 1
        for key, state in batch.states.items():
            with self.scope(batch.scopes[key]):
                self.store.put_state(key, state)  # 1
        self._crash_point("stored", batch)
        if batch.fresh:
            await self.durable()  # 2
            if self.seal:  # 2, the changelog's ends exact before anything derived leaves
                sealing = {batch.partitions[key]: key for key in batch.states}
                for key in sealing.values():
                    with self.scope(batch.scopes[key]):
                        self.store.put_state(key, batch.states[key])
                await self.durable()
        self._crash_point("durable", batch)
        events = [e for outbox in batch.outboxes.values() for e in outbox]
        if events or batch.loose or batch.copies:
            await self.send([*events, *batch.loose], batch.copies)  # 3
        self._crash_point("sent", batch)
        for key in batch.outboxes:
            with self.scope(batch.scopes[key]):
                self.store.clear_outbox(key)  # 4
        self._crash_point("cleared", batch)
        finals: dict[int, bytes] = {}
        if self.seal:
            finals = {partition: mark for mark, (_, partition, _) in batch.marks.items()}
        last = set(finals.values())
        for mark, (value, _, event) in batch.marks.items():
            if mark not in last:
                with self.scope(event):
                    self.store.put_mark(mark, value)  # 5
        self._crash_point("checkpointed", batch)
        if finals:
            await self.durable()
            for mark in finals.values():
                value, _, event = batch.marks[mark]
                with self.scope(event):
                    self.store.put_mark(mark, value)  # 5, alone in its batch
            await self.durable()
        for topic, outcome in batch.counts:
            if outcome == "rerouted":
                self.metrics.processor_reroutes.labels(topic).inc()
            else:
                self.metrics.events_consumed.labels(topic, outcome).inc()

    def _judges(self, spec: TopicSpec, event: Envelope, state: ItemState | None) -> bool:
        """Whether the rules will judge who may act on this record: a decision, a retrieve, or
        a submission that releases decisions held for it (each judged when applied)."""
        if spec is DECISIONS or isinstance(event, ItemRetrieved):
            return True
        return isinstance(event, ItemSubmitted) and state is not None and bool(state.held)

    def _crash_point(self, point: str, batch: Batch) -> None:
        """Exit at once at `point` of a batch of several records when PROCESSOR_CRASH_AT names
        it (fault injection for the chaos run: nothing is flushed, as after a SIGKILL)."""
        if self.settings.processor_crash_at == point and batch.records > 1:
            log.error(
                "PROCESSOR_CRASH_AT=%s: exiting in a batch of %d records (fault injection)",
                point,
                batch.records,
            )
            os._exit(CRASH_EXIT_CODE)

    def _inject_fault(self, key: str) -> None:
        """Fail the rules on the item PROCESSOR_POISON_ITEM_ID names (fault injection)."""
        poison = self.settings.processor_poison_item_id
        if poison and key.rpartition(":")[2] == poison:
            raise RuntimeError("PROCESSOR_POISON_ITEM_ID names this item (fault injection)")

    @staticmethod
    def _count(batch: Batch, spec: TopicSpec, result: str) -> None:
        """Count a record's outcome once the batch is committed (a batch that fails is
        applied again, and counted then)."""
        batch.counts.append((spec.name, result))


__all__ = ["CRASH_EXIT_CODE", "Batch", "Input", "Step", "no_scope"]
