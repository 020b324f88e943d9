"""Which offset is safe to commit per partition when records finish out of order (pure)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable


class OffsetTracker:
    """Tracks records in flight per partition; commits never pass one that is not finished.

    The committable offset of a partition is its lowest unfinished offset, or one past the
    highest finished offset when none is in flight: a crash redelivers exactly what was pending.
    """

    def __init__(self) -> None:
        self._pending: dict[Hashable, set[int]] = {}
        self._next: dict[Hashable, int] = {}
        self._committed: dict[Hashable, int] = {}

    def started(self, partition: Hashable, offset: int) -> None:
        """A record was handed to a task."""
        self._pending.setdefault(partition, set()).add(offset)
        self._next[partition] = max(self._next.get(partition, 0), offset + 1)

    def finished(self, partition: Hashable, offset: int) -> None:
        """A record's side effects are durable."""
        self._pending.get(partition, set()).discard(offset)

    def pending(self) -> int:
        """How many records are in flight."""
        return sum(len(offsets) for offsets in self._pending.values())

    def committable(self) -> dict[Hashable, int]:
        """Offsets to commit now: only partitions whose safe offset moved since the last call."""
        moves = {}
        for partition, upper in self._next.items():
            pending = self._pending.get(partition)
            safe = min(pending) if pending else upper
            if self._committed.get(partition, -1) < safe:
                moves[partition] = safe
        return moves

    def committed(self, offsets: dict[Hashable, int]) -> None:
        """Those offsets are committed."""
        for partition, offset in offsets.items():
            self._committed[partition] = max(self._committed.get(partition, -1), offset)

    def rewind(self, partition: Hashable, offset: int) -> None:
        """The partition is read again from `offset`: records from there on are not in flight."""
        pending = self._pending.get(partition, set())
        self._pending[partition] = {o for o in pending if o < offset}
        if partition in self._next:
            self._next[partition] = min(self._next[partition], offset)

    def forget(self, partitions: Iterable[Hashable]) -> None:
        """Partitions revoked in a rebalance: their state leaves with them."""
        for partition in partitions:
            self._pending.pop(partition, None)
            self._next.pop(partition, None)
            self._committed.pop(partition, None)
