"""Gaps and stalls in the input partitions: which record is next in line, and seeking back.

The rules of it (verdicts, what counts as stalled, one seek per gap) are the pure functions of
`checkpoints`; this module asks the store, the probe and the consumer, and seeks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from pipeline.metrics import Metrics
from pipeline.processor import checkpoints
from pipeline.processor.config import INPUT_TOPICS
from pipeline.processor.ports import Probe, Seek
from pipeline.processor.store import ItemStore
from pipeline.settings import Settings
from topics.record import Record

log = logging.getLogger(__name__)


class Healing:
    """Keeps every input partition applying its records in order, none left out.

    `app` is the faust app: the stall watchdog reads its consumer's assignment and highwaters.
    `clock`: monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        app: Any,
        settings: Settings,
        store: ItemStore,
        probe: Probe,
        seek: Seek,
        metrics: Metrics,
        ready: asyncio.Event,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app, self.store, self.probe, self.seek = app, store, probe, seek
        self.metrics, self.ready, self.clock = metrics, ready, clock
        self.reseeks = checkpoints.Reseeks()
        self._item_topics = {settings.topic(s.name): s for s in INPUT_TOPICS}
        self._started = clock()
        #: When a record of each input partition, and of any, last reached the agent.
        self._last_seen: dict[tuple[str, int], float] = {}
        self._last_any = self._started

    async def next_in_line(self, record: Record, expected: int | None = None) -> bool:
        """Whether `record` is the next one its partition's checkpoint expects.

        `expected`: the next offset as a batch being applied has moved it (None: the stored
        checkpoint's).

        Records below the checkpoint were applied already. A record past it means records in
        between never reached this agent: unless the probe finds no record there (offsets a
        transaction marker or compaction left empty), the partition is sought back to the
        checkpoint and the record waits for its turn.
        """
        tp = (record.topic, record.partition)
        self._last_seen[tp] = self._last_any = self.clock()
        if expected is None:
            expected = self.store.checkpoint(*tp)
        if expected is None:
            expected = await self.probe.log_start(*tp)
        verdict = checkpoints.verdict(expected, record.offset)
        if verdict is checkpoints.Verdict.SKIP:
            self.metrics.events_consumed.labels(
                self._item_topics[record.topic].name, "duplicate"
            ).inc()
            return False
        if verdict is checkpoints.Verdict.APPLY:
            self.reseeks.done(tp)
            return True
        start = await self.probe.log_start(*tp)
        if expected < start:
            log.error(
                "%s[%s] offsets %s..%s were deleted by retention before they were applied",
                *tp,
                expected,
                start - 1,
            )
            expected = start
        first = await self.probe.first_offset(*tp, expected)
        if expected == record.offset or (first is not None and first >= record.offset):
            return True  # nothing was skipped: no record lies in between
        await self.seek_back(tp, expected, "gap")
        return False

    async def seek_back(self, tp: tuple[str, int], offset: int, cause: str) -> None:
        """Seek an input partition back to its checkpoint, once per wait (the `seek` port of
        `build_app` starts at the group's committed offset when that is lower)."""
        if not self.reseeks.due(tp, offset, self.clock()):
            return
        log.warning(
            "%s[%s]: records from offset %s were not applied (%s); seeking back", *tp, offset, cause
        )
        self.metrics.processor_reseeks.labels(self._item_topics[tp[0]].name, cause).inc()
        await self.seek(tp, offset)

    async def heal_stalls(self) -> None:
        """Seek back any input partition with records past its checkpoint that stopped coming.

        Covers records lost at the tail of a partition, where no later record arrives to show
        the gap, and partitions the consumer never fetched at all (faust knows no highwater for
        those: the broker is asked where they end). A partition counts as stalled once the
        agent has had nothing at all to do for a while (so records merely queued behind a
        backlog do not count), or after a long wait regardless.
        """
        if not self.ready.is_set() or self.app.rebalancing:
            return
        consumer: Any = self.app.consumer
        now = self.clock()
        for tp in consumer.assignment():
            if tp.topic not in self._item_topics:
                continue
            key = (tp.topic, tp.partition)
            expected = self.store.checkpoint(*key)
            idle = now - self._last_seen.get(key, self._started)
            agent_idle = now - self._last_any
            highwater, cause = consumer.highwater(tp), "stall"
            if highwater is None:
                if not checkpoints.idle_long(idle, agent_idle):
                    continue
                self._last_seen[key] = now  # one look at the broker per stall period
                highwater, cause = await self.probe.log_end(*key), "unfetched"
            if not checkpoints.stalled(expected, highwater, idle, agent_idle):
                continue
            self._last_seen[key] = now  # one look per stall period
            if expected is None:
                expected = await self.probe.log_start(*key)
            if await self.probe.first_offset(*key, expected) is not None:
                await self.seek_back(key, expected, cause)


__all__ = ["Healing"]
