"""One item's events from its topics, merged into the order the processor applied them (pure)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
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
        """The tie-break among events that could each come next: time, topic rank, position."""
        record = self.record
        return (self.event.occurred_at, self.rank, record.partition, record.offset)


def _anything(_: Entry) -> bool:
    return True


def merged(
    streams: Iterable[list[Entry]], applies: Callable[[Entry], bool] = _anything
) -> Iterator[Entry]:
    """One item's events from its topics, in the order the processor applied them.

    Each topic's own order (by offset) is the processor's, so it is kept. Across topics the
    processor's order is causal: it could only have applied an event its item was ready for
    (a re-send after the reject that made it possible, an ERP answer after the accept that
    asked), whatever the senders' clocks say. So the next event is, among the topics' next
    ones, one that `applies(entry)` says the item takes now (the rebuild asks its reaction
    table, and is called again after each event), and only when none does, one that will be
    refused; times (`Entry.order`) only break ties between candidates of the same kind.
    """
    queues = [
        deque(sorted(stream, key=lambda e: (e.record.partition, e.record.offset)))
        for stream in streams
    ]
    queues = [queue for queue in queues if queue]
    while queues:
        ready = [queue for queue in queues if applies(queue[0])]
        chosen = min(ready or queues, key=lambda queue: queue[0].order())
        yield chosen.popleft()
        if not chosen:
            queues.remove(chosen)
