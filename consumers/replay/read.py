"""`replay`: read the audit topics in batches and rebuild every item with the live rules.

Nothing is written anywhere: one group-less consumer with manual partition assignment reads
erp.directory, erp.submissions, erp.decisions and erp.export-results from the beginning
(state needs the whole history), up to the end offsets of now or of `--to`; decisions whose
records lie before the offsets of `--from` are applied but not reported.

The live processor reads an item's three topics in whatever order they arrive; the replay
keeps each topic's own order and merges them in the order the processor could have applied
them (`pipeline.replay.entries.merged`: what the item was ready for first, senders' times only
breaking ties), never trusting a sender's clock over causality. Where the two orders still
differ in a way the rules care about (an unversioned decision read before the submission it
answers, an accept and a retrieve both possible at once and stamped against the order they were
read in), `--verify` names the item. Who was allowed to act is the live processor's verdict,
read from the refusals at stage `authorize` on erp.dead-letters (all of them, whatever `--to`
says: a decision before it may have been judged after it), see `pipeline.replay.verdicts`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.kafka import make_consumer, partitions_of, stop_consumer
from pipeline.replay.entries import TOPIC_RANK, Entry
from pipeline.replay.rebuild import Rebuild, Rebuilt
from pipeline.replay.verdicts import Verdicts
from pipeline.rules.keys import key_error
from pipeline.settings import Settings
from topics import ContractError, TopicSpec
from topics.events import EventRefused
from topics.record import Record, decode_record
from topics.specs import DEAD_LETTERS, DECISIONS, DIRECTORY, EXPORT_RESULTS, SUBMISSIONS

REPLAYED = (DIRECTORY, SUBMISSIONS, DECISIONS, EXPORT_RESULTS, DEAD_LETTERS)
BATCH = 50_000


@dataclass(frozen=True)
class ReplayOptions:
    """What to replay: report window (None: everything), company / item filters, progress."""

    start: dt.datetime | None = None
    end: dt.datetime | None = None
    company: str | None = None
    item: str | None = None
    progress: TextIO | None = None


@dataclass(repr=False)
class ReplayResult:
    """The rebuilt items and audit rows, how much was read, how long it took (reading and
    decoding included in `read_s`)."""

    rebuilt: Rebuilt
    records: int = 0
    #: records the live processor refused before the rules (undecodable, or a wrong key)
    undecodable: int = 0
    elapsed_s: float = 0.0
    read_s: float = 0.0
    #: seconds from the first fetch (the consumer started, assigned and positioned) to the
    #: last record decoded, and the records read in them (dead letters included)
    reading_s: float = 0.0
    read_events: int = 0
    partial: bool = False
    ends: dict[str, int] = field(default_factory=dict)

    def __repr__(self) -> str:
        # short: `asyncio.run(replay(...))` makes a repr of it on the way out (see `Rebuilt`)
        return (
            f"ReplayResult({self.rebuilt!r}, records={self.records}, "
            f"undecodable={self.undecodable}, elapsed_s={self.elapsed_s:.3f}, "
            f"partial={self.partial})"
        )


def _millis(at: dt.datetime) -> int:
    return int(at.timestamp() * 1000)


async def _offsets_at(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], at: dt.datetime, ends: dict[Any, int]
) -> dict[TopicPartition, int]:
    """The first offset at or after `at` on each partition (its end when nothing is that late)."""
    found = await consumer.offsets_for_times({tp: _millis(at) for tp in tps})
    offsets = {}
    for tp in tps:
        answer = found.get(tp)
        # Kafka answers "none that late" with no offset; some brokers (the embedded Tansu)
        # with offset 0 and timestamp -1 instead: both mean the partition's end.
        late_enough = answer is not None and answer.timestamp >= 0
        offsets[tp] = answer.offset if answer is not None and late_enough else ends[tp]
    return offsets


class _Reader:
    """Collects decoded events, grouped the way the rebuild needs them."""

    def __init__(self, settings: Settings, options: ReplayOptions) -> None:
        self.options = options
        self.specs = {settings.topic(spec.name): spec for spec in REPLAYED}
        self.directory: list[Any] = []
        self.verdicts = Verdicts()
        self.items: dict[str, dict[str, list[Entry]]] = defaultdict(lambda: defaultdict(list))
        self.records = self.undecodable = 0
        #: dead letters read for the verdicts (not counted in `records`)
        self.dead_letters = 0

    def wanted(self, key: bytes | None) -> bool:
        if self.options.item is not None:
            return key is not None and key.decode("utf-8", "replace") == self.options.item
        if self.options.company is not None:
            return key is not None and key.startswith(f"{self.options.company}:".encode())
        return True

    def add(self, record: Any, spec: TopicSpec, reported: bool) -> None:
        if spec is DEAD_LETTERS:
            self.verdict(record)
            return
        self.records += 1
        read = Record.of(record)
        try:
            event = decode_record(read, spec)
        except ContractError:
            self.undecodable += 1  # the live processor dead-lettered it; it changes no state
            return
        if key_error(spec, read, event) is not None:
            self.undecodable += 1  # refused live too (wrong key): it changes no state
            return
        if spec is DIRECTORY:
            if self.options.company in (None, event.company_id):
                self.directory.append(event)
            return
        if not self.wanted(record.key):
            return
        rank = TOPIC_RANK[spec.name.removeprefix("erp.")]
        self.items[event.item_key][spec.name].append(Entry(event, read, rank, reported))

    def verdict(self, record: Any) -> None:
        """A dead letter: kept when it is a live refusal (of a wanted company).

        Dead letters are written by the pipeline's own workers and no worker consumes them, so
        they are read on the trusted path: pydantic's own JSON parser, not the codec's checks
        for input (a duplicate key, the headers), which refuse nothing our workers write.
        """
        self.dead_letters += 1
        try:
            event = EventRefused.model_validate_json(record.value or b"")
        except ValueError:  # pydantic's ValidationError is one
            return
        if self.options.company in (None, event.company_id):
            self.verdicts.add(event)


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Python's cycle collector off for the block (as it was before, after it).

    The replay keeps every event it reads until the rebuild: each full collection walks all of
    them again, about a third of the replay's CPU time on a few thousand items. What the
    block leaves in cycles is collected after it as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


async def replay(
    settings: Settings, options: ReplayOptions, stop: asyncio.Event | None = None
) -> ReplayResult:
    """Rebuild every item from the topics and collect the audit rows; no side effects.

    `stop` ends the reading early: the result is then marked partial.
    """
    with _no_cycle_collection():
        return await _replay(settings, options, stop)


async def _replay(
    settings: Settings, options: ReplayOptions, stop: asyncio.Event | None
) -> ReplayResult:
    started = time.monotonic()
    reader = _Reader(settings, options)
    consumer = make_consumer(settings, group_id=None, max_poll_records=BATCH)
    await consumer.start()
    partial = False
    try:
        tps = [tp for name in reader.specs for tp in await partitions_of(consumer, name)]
        consumer.assign(tps)
        latest = await consumer.end_offsets(tps)
        ends = dict(latest)
        if options.end is not None:
            ends = await _offsets_at(consumer, tps, options.end, latest)
            ends.update({tp: latest[tp] for tp in tps if reader.specs[tp.topic] is DEAD_LETTERS})
        firsts = await consumer.beginning_offsets(tps)
        report_from = dict(firsts)
        if options.start is not None:
            report_from = await _offsets_at(consumer, tps, options.start, latest)
        await consumer.seek_to_beginning(*tps)
        progress = _Progress(options.progress, firsts, ends)
        pending = {tp for tp in tps if firsts[tp] < ends[tp]}
        while pending:
            if stop is not None and stop.is_set():
                partial = True
                break
            batches = await consumer.getmany(*pending, timeout_ms=200, max_records=BATCH)
            for tp, records in batches.items():
                spec = reader.specs[tp.topic]
                for record in records:
                    if options.end is not None and record.offset >= ends[tp]:
                        break  # past `--to`; without it, records past a short end are kept
                    reader.add(record, spec, record.offset >= report_from[tp])
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
            progress.show(
                reader.records + reader.dead_letters,
                {tp: await consumer.position(tp) for tp in tps},
            )
        if options.end is None and not partial:
            # Some brokers (the embedded one) under-report end offsets after concurrent
            # writes: records past the reported end are still there, so drain until quiet.
            while batches := await consumer.getmany(*tps, timeout_ms=300, max_records=BATCH):
                for tp, records in batches.items():
                    for record in records:
                        reader.add(record, reader.specs[tp.topic], record.offset >= report_from[tp])
        read_events = reader.records + reader.dead_letters
        reading_s = progress.done(read_events)
    finally:
        await stop_consumer(consumer)
    read_s = time.monotonic() - started
    rebuild = Rebuild(reader.verdicts)
    for event in reader.directory:
        rebuild.directory_event(event)
    for key in sorted(reader.items):
        rebuild.item(key, reader.items[key].values())
    return ReplayResult(
        rebuild.result,
        records=reader.records,
        undecodable=reader.undecodable,
        elapsed_s=time.monotonic() - started,
        read_s=read_s,
        reading_s=reading_s,
        read_events=read_events,
        partial=partial,
        ends={f"{tp.topic}:{tp.partition}": end for tp, end in sorted(ends.items())},
    )


class _Progress:
    """Events/s, position per partition and an ETA on stderr, at most once a second."""

    def __init__(self, out: TextIO | None, firsts: dict[Any, int], ends: dict[Any, int]) -> None:
        self.out, self.firsts, self.ends = out, firsts, ends
        self.total = sum(max(0, ends[tp] - firsts[tp]) for tp in ends)
        self.started = self.last = time.monotonic()

    def show(self, done: int, positions: dict[Any, int]) -> None:
        now = time.monotonic()
        if self.out is None or now - self.last < 1.0:
            return
        self.last = now
        rate = done / max(now - self.started, 1e-6)
        eta = (self.total - done) / rate if rate else float("inf")
        where = " ".join(
            f"{tp.topic.rsplit('.', 1)[-1]}[{tp.partition}]={positions[tp]}/{self.ends[tp]}"
            for tp in sorted(positions)
            if self.ends[tp] > self.firsts[tp]
        )
        print(
            f"replay: {done}/{self.total} events, {rate:,.0f}/s, ETA {eta:,.0f}s  {where}",
            file=self.out,
            flush=True,
        )

    def done(self, done: int) -> float:
        """Say how many events were read in how long; the seconds since the first fetch."""
        elapsed = time.monotonic() - self.started
        if self.out is not None:
            print(f"replay: read {done} events in {elapsed:.1f}s", file=self.out, flush=True)
        return elapsed


__all__ = ["ReplayOptions", "ReplayResult", "replay"]
