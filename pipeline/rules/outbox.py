"""An item's outbox: the events a record derived, as the processor's items table keeps them.

The processor stores an item's new state *before* publishing what the record derived, and
makes it durable first, so that nothing downstream can answer an event (an export result
answering `ExportRequested`) whose cause another instance could not restore after a crash.
The derived events wait next to the state, under the item's outbox key, and are deleted once
published; if the worker dies in between, the item's next record (the redelivery, at the
latest) publishes them first. Same ids, so a repeat is dropped downstream.

The stored form lives with the rules (pure) because the rules' size check (`sizes`) measures
exactly what the table will write.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from topics import Envelope, TopicSpec, decode, encode

#: Outbox keys share the items table with item keys, which never start with a NUL byte.
PREFIX = b"\x00outbox\x00"
#: Between two events of an outbox: never inside one (the codec escapes line breaks in strings).
SEPARATOR = b"\n"


def key(item_key: str) -> bytes:
    """The table key of an item's outbox."""
    return PREFIX + item_key.encode()


def pack(events: Sequence[Envelope]) -> bytes:
    """The stored form of the events, in publishing order: each one's encoding, one per line.

    Nothing is escaped, so an outbox takes the size of its events and one byte between two.
    """
    return SEPARATOR.join(encode(event) for event in events)


def unpack(stored: bytes, routes: dict[str, TopicSpec]) -> list[Envelope]:
    """The events back, decoded as the contract says (`routes`: each event type's topic, for
    the form of earlier versions)."""
    if stored.startswith(b"["):  # the form of earlier versions: a JSON list of wrapped events
        return [
            decode(entry["value"].encode(), routes[entry["event_type"]])
            for entry in json.loads(stored)
        ]
    return [decode(line) for line in stored.split(SEPARATOR)]


__all__ = ["PREFIX", "SEPARATOR", "key", "pack", "unpack"]
