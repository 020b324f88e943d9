"""What one record's outcome may weigh: every record it makes the processor write must fit (pure).

Applying a record writes the item's state and its outbox to the items table (and so to its
changelog), and publishes each derived event. Kafka refuses a record over its limit, and faust
only logs a changelog write it could not make: the state would be lost. So the rules measure
each of those records exactly as it will be written, before anything is, against
`MAX_RECORD_BYTES`; an outcome that does not fit is not applied (see `engine.react`).
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.rules import outbox
from pipeline.rules.state import ItemState
from topics import Envelope, record_size
from topics.limits import MAX_RECORD_BYTES


def state_record_bytes(item_key: str, state: ItemState) -> int:
    """Bytes of the items-table record holding the state: its key and stored form."""
    return len(item_key.encode()) + len(state.stored())


def outbox_record_bytes(item_key: str, events: Sequence[Envelope]) -> int:
    """Bytes of the items-table record holding the item's outbox."""
    return len(outbox.key(item_key)) + len(outbox.pack(events))


def oversize(item_key: str, state: ItemState | None, events: Sequence[Envelope]) -> str | None:
    """Why the outcome cannot be written (None when every record fits in `MAX_RECORD_BYTES`).

    `state` None: nothing is stored, and the events are published directly (no outbox).
    """
    limit = f"over the {MAX_RECORD_BYTES}-byte limit of a record"
    for event in events:
        size = record_size(event)
        if size > MAX_RECORD_BYTES:
            return f"its {event.event_type} would take {size} bytes, {limit}"
    if state is None:
        return None
    if events and (size := outbox_record_bytes(item_key, events)) > MAX_RECORD_BYTES:
        return f"the {len(events)} events it derives would take {size} bytes together, {limit}"
    if (size := state_record_bytes(item_key, state)) > MAX_RECORD_BYTES:
        return f"the item's state would take {size} bytes, {limit}"
    return None


__all__ = ["outbox_record_bytes", "oversize", "state_record_bytes"]
