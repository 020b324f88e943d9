"""Records held back for a retry: the later records of their partition wait behind them."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Iterable, Mapping


class Holds:
    """Per partition, the offsets of records being retried.

    A record may start only while no earlier record of its partition is held: a retried
    record is never overtaken on its partition (records that had started before it was
    held carry on; with a concurrency of 1 there are none).
    """

    def __init__(self) -> None:
        self._held: dict[Hashable, set[int]] = {}
        self._changed = asyncio.Event()

    def hold(self, firsts: Mapping[Hashable, int]) -> None:
        """Hold, per partition, the record at that offset."""
        for partition, offset in firsts.items():
            self._held.setdefault(partition, set()).add(offset)

    def release(self, firsts: Mapping[Hashable, int]) -> None:
        """Those records are done (or no longer ours): what waits behind them may start."""
        for partition, offset in firsts.items():
            offsets = self._held.get(partition, set())
            offsets.discard(offset)
            if not offsets:
                self._held.pop(partition, None)
        self.wake()

    def blocks(self, partition: Hashable, offset: int) -> bool:
        """Whether an earlier record of the partition is held."""
        return any(held < offset for held in self._held.get(partition, ()))

    async def wait(self, partition: Hashable, offset: int, stopping: asyncio.Event) -> bool:
        """Wait until the record may start; False when the loop stops while it is held back."""
        while self.blocks(partition, offset):
            if stopping.is_set():
                return False
            await self._changed.wait()
        return True

    def wake(self) -> None:
        """Let waiting records look again (a hold was released, or the loop stops)."""
        self._changed.set()
        self._changed = asyncio.Event()

    def forget(self, partitions: Iterable[Hashable]) -> None:
        """Partitions revoked in a rebalance: their holds leave with them."""
        for partition in partitions:
            self._held.pop(partition, None)
        self.wake()
