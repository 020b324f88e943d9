"""The processor's ports: the side effects `build_app` is handed, so that tests pass fakes."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from topics import Envelope, TopicSpec
from topics.record import Record

#: The time of day, for the daily summary (never an ordering key).
Clock = Callable[[], dt.datetime]
#: Send one derived event to its topic; returns once the broker acknowledged it.
Publish = Callable[[Envelope], Awaitable[None]]
#: Re-publish a record read on a partition its key does not hash to, unchanged, on the given
#: partition of the repartition topic with its origin in headers; returns once acknowledged.
Reroute = Callable[[Record, int], Awaitable[None]]
#: Send derived events (each item's in order) and re-routed copies `(record, partition)`
#: without waiting for each; returns once the broker acknowledged them all.
Send = Callable[[Sequence[Envelope], Sequence[tuple[Record, int]]], Awaitable[None]]
#: The context the table reads and writes made for one fetched record run in (faust picks a
#: table partition from the event being processed); given the record's faust event, or None.
Scope = Callable[[Any], contextlib.AbstractContextManager[object]]
#: Return once every table write made so far is acknowledged on the changelog.
Durable = Callable[[], Awaitable[None]]
#: Move the fetch position of an input partition, `(topic, partition)`, to an offset.
Seek = Callable[[tuple[str, int], int], Awaitable[None]]


class Probe(Protocol):
    """Looks into partitions without joining a group (see `replicas.PartitionProbe`)."""

    async def log_start(self, topic: str, partition: int) -> int:
        """The partition's first offset still held by the broker."""
        ...

    async def log_end(self, topic: str, partition: int) -> int:
        """The partition's end offset (the offset its next record will get)."""
        ...

    async def first_offset(self, topic: str, partition: int, offset: int) -> int | None:
        """Offset of the first record at or after `offset`; None if there is none."""
        ...

    async def stop(self) -> None:
        """Disconnect."""
        ...


class Replica(Protocol):
    """A whole topic kept in memory (see `replicas.TopicReplica`)."""

    async def start(self) -> None:
        """Start reading from the beginning."""
        ...

    async def sync(self, timeout_s: float = ...) -> bool:
        """Wait until everything published before the call has been applied."""
        ...

    async def stop(self) -> None:
        """Stop reading."""
        ...


#: Builds the replica of a topic, each decoded event folded in by the function given.
ReplicaFactory = Callable[[TopicSpec, Callable[[Any], object]], Replica]


def utc_now() -> dt.datetime:
    """The production clock."""
    return dt.datetime.now(dt.UTC)


__all__ = [
    "Clock",
    "Durable",
    "Probe",
    "Publish",
    "Replica",
    "ReplicaFactory",
    "Reroute",
    "Scope",
    "Seek",
    "Send",
    "utc_now",
]
