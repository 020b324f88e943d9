"""Accounting of a stretch of a system run: records added to each input topic, records the
workers finished (their `events_consumed_total`), and the dead letters written meanwhile."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition

from consumers.export.worker import GROUP as EXPORTER
from consumers.notify.worker import GROUP as NOTIFIER
from consumers.readmodel.projection import GROUP as PROJECTION
from pipeline.kafka import make_consumer, stop_consumer
from pipeline.processor.config import APP_NAME as PROCESSOR
from tests.support.hostile import INPUT_TOPICS
from tests.support.kafka import end_offsets, read_from
from tests.support.system import System
from topics import ContractError, decode, spec_for
from topics.specs import (
    DEAD_LETTERS,
    DECISIONS,
    DIRECTORY,
    EXPORT_RESULTS,
    EXPORTS,
    NOTIFICATIONS,
    STATUS,
    SUBMISSIONS,
)

#: Each consumer group and the input topics it commits offsets on.
GROUP_TOPICS = {
    PROCESSOR: (DIRECTORY, SUBMISSIONS, DECISIONS, EXPORT_RESULTS),
    EXPORTER: (EXPORTS,),
    PROJECTION: (STATUS,),
    NOTIFIER: (NOTIFICATIONS,),
}
#: Where (topic, partition, offset) a dead letter says the record it refuses was read.
Coordinates = tuple[str, int, int]


@dataclass(frozen=True)
class Snapshot:
    """End offsets (topic → partition → offset) and records finished, by (topic, outcome)."""

    ends: dict[str, dict[int, int]]
    consumed: Counter[tuple[str, str]]

    def added_since(self, start: Snapshot, topic: str) -> int:
        """Records added to `topic` between `start` and this snapshot."""
        return sum(end - start.ends[topic][p] for p, end in self.ends[topic].items())

    def finished_since(self, start: Snapshot, topic: str, *outcomes: str) -> int:
        """Records of `topic` finished (with one of `outcomes`, or any) since `start`."""
        return sum(
            count - start.consumed[(t, outcome)]
            for (t, outcome), count in self.consumed.items()
            if t == topic and (not outcomes or outcome in outcomes)
        )


def snapshot(system: System) -> Snapshot:
    """The input topics' and the dead letters' end offsets, then the workers' counts."""
    ends = {
        spec.name: asyncio.run(end_offsets(system.settings, spec))
        for spec in (*INPUT_TOPICS, DEAD_LETTERS)
    }
    return Snapshot(ends, system.consumed())


def behind(system: System, ends: dict[str, dict[int, int]]) -> list[str]:
    """The group/topic/partitions whose committed offset has not reached `ends`."""

    async def go() -> list[str]:
        late = []
        for group, specs in GROUP_TOPICS.items():
            consumer = make_consumer(system.settings, group_id=system.settings.group(group))
            await consumer.start()
            try:
                for spec in specs:
                    name = system.settings.topic(spec.name)
                    for partition, end in ends[spec.name].items():
                        done = await consumer.committed(TopicPartition(name, partition)) or 0
                        if done < end:
                            late.append(f"{group} {spec.name}/{partition} {done}<{end}")
            finally:
                await stop_consumer(consumer)
        return late

    return asyncio.run(go())


def settled(system: System) -> Snapshot | None:
    """A snapshot taken while nothing moved, with every group committed to the end (None
    while records are still being added or worked off)."""
    first = snapshot(system)
    if behind(system, first.ends):
        return None
    second = snapshot(system)
    return second if second == first else None


def unsettled(system: System) -> str:
    """Why `settled` returns None now: the groups behind, or what moved between two looks."""
    first = snapshot(system)
    late = behind(system, first.ends)
    if late:
        return f"groups behind the end: {late[:8]}"
    second = snapshot(system)
    moved = sorted(
        f"{topic} +{second.added_since(first, topic)}"
        for topic in second.ends
        if second.added_since(first, topic)
    )
    counts = sorted(
        str(k)
        for k in set(second.consumed) | set(first.consumed)
        if second.consumed[k] != first.consumed[k]
    )
    return f"still moving: records added {moved}, counts changed {counts}"


def unbalanced(start: Snapshot, end: Snapshot) -> dict[str, tuple[int, int, int]]:
    """Input topics whose records were not each finished once: topic → (added, finished,
    finished as duplicates).

    Every record added must be finished, and no more records than were added may be finished
    other than as duplicates: a record delivered again after a rebalance or a seek back (the
    processor's repair) is finished again, as a `duplicate`, by design. So
    finished - duplicates <= added <= finished: a record never finished leaves `finished`
    short, one applied twice makes the non-duplicates exceed `added`.
    """
    found = {}
    for spec in INPUT_TOPICS:
        added = end.added_since(start, spec.name)
        finished = end.finished_since(start, spec.name)
        repeated = end.finished_since(start, spec.name, "duplicate")
        if not finished - repeated <= added <= finished:
            found[spec.name] = (added, finished, repeated)
    return found


class Balance:
    """Polled until the run is over: a settled snapshot in which every input topic has had
    each record added since `start` finished once (see `unbalanced`).

    A settled snapshot that stays unbalanced for `patience_s` fails at once: every group has
    committed to the end, so no count will move any more (the processor's repair of records
    its consumer lost starts after 10 s idle, well within that patience).
    """

    def __init__(self, system: System, start: Snapshot, patience_s: float = 45.0) -> None:
        self.system, self.start, self.patience_s = system, start, patience_s
        self._stuck: tuple[Snapshot, float] | None = None

    def __call__(self) -> Snapshot | None:
        now = settled(self.system)
        if now is None:
            return None
        off = unbalanced(self.start, now)
        if not off:
            return now
        if self._stuck is None or self._stuck[0] != now:
            self._stuck = (now, time.monotonic())
        elif time.monotonic() - self._stuck[1] > self.patience_s:
            raise AssertionError(
                f"input topics whose records were not each finished once"
                f" (added, finished, finished as duplicates): {off}"
            )
        return None


def records_between(system: System, start: Snapshot, end: Snapshot, spec: Any) -> list[Any]:
    """The records of a topic added between two snapshots."""
    records = asyncio.run(read_from(system.settings, spec, start.ends[spec.name]))
    return [r for r in records if r.offset < end.ends[spec.name][r.partition]]


def dead_letters(records: list[Any]) -> tuple[list[Any], list[Any]]:
    """Records of erp.dead-letters decoded, and those the product cannot decode."""
    good, bad = [], []
    for record in records:
        try:
            good.append(decode(record.value, DEAD_LETTERS))
        except ContractError:
            bad.append(record)
    return good, bad


def source_of(system: System, dead: Any) -> Coordinates:
    """The (contract topic, partition, offset) a dead letter refuses."""
    source = dead.payload.source
    spec = spec_for(source.topic, system.settings.erp_topic_prefix)
    return spec.name, source.partition, source.offset
