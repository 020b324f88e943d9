"""The items table as a state store: item states, their outboxes and the input checkpoints.

All three share one changelog-backed table, under keys that never collide (see `outbox` and
`checkpoints`).
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence

from pipeline.processor import checkpoints
from pipeline.processor.config import ROUTES
from pipeline.rules import outbox
from pipeline.rules.state import ItemState
from topics import Envelope
from topics.record import Record


class ItemStore:
    """Typed reads and writes over the items table (faust's table, or a dict in tests)."""

    def __init__(self, table: MutableMapping[bytes, bytes]) -> None:
        self.table = table

    def state(self, key: str) -> ItemState | None:
        """The item's stored state (None for an item never seen)."""
        stored = self.table.get(key.encode())
        return ItemState.from_stored(stored) if stored else None

    def put_state(self, key: str, state: ItemState) -> None:
        """Store the item's new state (the rules checked that it fits in one record)."""
        self.table[key.encode()] = state.stored()

    def outbox(self, key: str) -> list[Envelope] | None:
        """The events waiting in the item's outbox, in publishing order (None: no outbox)."""
        stored = self.table.get(outbox.key(key))
        return outbox.unpack(stored, ROUTES) if stored else None

    def put_outbox(self, key: str, events: Sequence[Envelope]) -> None:
        """Keep the events the item's record derived until they are published."""
        self.table[outbox.key(key)] = outbox.pack(events)

    def clear_outbox(self, key: str) -> None:
        """Delete the item's outbox once everything in it was published."""
        del self.table[outbox.key(key)]

    def checkpoint(self, topic: str, partition: int) -> int | None:
        """The next offset the input partition expects (None: nothing applied yet)."""
        return checkpoints.decode(self.table.get(checkpoints.key(topic, partition)))

    def advance(self, record: Record, *, origin: Record | None = None) -> None:
        """Move the record's partition checkpoint past it. For a re-routed copy, `origin` is
        the record it stands for: first marked as applied (`routed_before`), in the same
        table partition, so a restored checkpoint never runs ahead of the mark."""
        if origin is not None:
            mark = checkpoints.routed_key(record.partition, origin.topic, origin.partition)
            self.table[mark] = checkpoints.encode(origin.offset + 1)
        self.table[checkpoints.key(record.topic, record.partition)] = checkpoints.encode(
            record.offset + 1
        )

    @staticmethod
    def checkpoint_key(record: Record) -> bytes:
        """The table key of `record`'s partition checkpoint."""
        return checkpoints.key(record.topic, record.partition)

    @staticmethod
    def routed_key(copy: Record, origin: Record) -> bytes:
        """The table key of the mark a re-routed `copy` of `origin` moves (`routed_before`)."""
        return checkpoints.routed_key(copy.partition, origin.topic, origin.partition)

    def put_mark(self, key: bytes, next_offset: int) -> None:
        """Store a checkpoint or a re-route mark (`checkpoint_key`, `routed_key`)."""
        self.table[key] = checkpoints.encode(next_offset)

    def routed_before(self, partition: int, origin: Record) -> bool:
        """Whether a copy of `origin` was applied from the repartition topic's `partition`
        already: the same original re-routed twice (a crash between its copy's ack and its
        checkpoint). Copies of one original partition reach one repartition partition in
        their original order, so one mark per (repartition partition, original partition)
        holds the next original offset expected there."""
        mark = checkpoints.routed_key(partition, origin.topic, origin.partition)
        expected = checkpoints.decode(self.table.get(mark))
        return expected is not None and origin.offset < expected


__all__ = ["ItemStore"]
