"""An item's outbox: the events a record derived, kept in the items table until published.

The processor stores an item's new state *before* publishing what the record derived, and
makes it durable first, so that nothing downstream can answer an event (an export result
answering `ExportRequested`) whose cause another instance could not restore after a crash.
The derived events wait next to the state, under the item's outbox key, and are deleted once
published; if the worker dies in between, the item's next record (the redelivery, at the
latest) publishes them first. Same ids, so a repeat is dropped downstream.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from topics import Envelope, TopicSpec, decode, encode

#: Outbox keys share the items table with item keys, which never start with a NUL byte.
PREFIX = b"\x00outbox\x00"


def key(item_key: str) -> bytes:
    """The table key of an item's outbox."""
    return PREFIX + item_key.encode()


def pack(events: Sequence[Envelope]) -> bytes:
    """The stored form of the events, in publishing order."""
    return json.dumps(
        [{"event_type": e.event_type, "value": encode(e).decode()} for e in events]
    ).encode()


def unpack(stored: bytes, routes: dict[str, TopicSpec]) -> list[Envelope]:
    """The events back, decoded as their topics' contract says."""
    return [
        decode(entry["value"].encode(), routes[entry["event_type"]]) for entry in json.loads(stored)
    ]


__all__ = ["PREFIX", "key", "pack", "unpack"]
