"""One item's events from its topics, merged into the order the rules see them (pure)."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from topics.events import ItemEvent
from topics.record import Record

#: Tie-break between topics for events of the same instant: what is sent, then what is
#: decided, then what the ERP answered (an answer never precedes its question).
TOPIC_RANK = {"submissions": 0, "decisions": 1, "export-results": 2}


@dataclass(frozen=True)
class Entry:
    """A decoded item event, its record, its topic's rank and whether it is to be reported."""

    event: ItemEvent
    record: Record
    rank: int
    reported: bool = True

    def order(self) -> tuple[object, ...]:
        """The merge key: time first, then topic rank, partition, offset."""
        record = self.record
        return (self.event.occurred_at, self.rank, record.partition, record.offset)


def merged(streams: Iterable[list[Entry]]) -> Iterator[Entry]:
    """One item's events from its topics, in the order the rules see them.

    Each topic's own order (by offset) is kept, as the live processor keeps it; across topics
    the earlier head by `Entry.order` goes first.
    """
    ordered = [
        sorted(stream, key=lambda e: (e.record.partition, e.record.offset)) for stream in streams
    ]
    return heapq.merge(*ordered, key=Entry.order)
