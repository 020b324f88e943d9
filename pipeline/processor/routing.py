"""Re-routing: which partition an item's record belongs on, and the origin a re-routed copy carries.

An item's state lives in the partition its key's murmur2 hash names (the partitioner of Java
clients, aiokafka and faust, and of the pipeline's own producers). A producer with another
partitioner (librdkafka's default `consistent_random`, CRC32) puts the item's records
elsewhere; the processor re-publishes such a record, key and value unchanged, to the internal
repartition topic (`topics.specs.ITEM_ROUTES`) on the partition the hash names, with the
coordinates it was read at in three headers, and handles the copy as if read there.

Pure functions over bytes: the step decides and publishes (`pipeline.processor.step`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka.partitioner import murmur2

from topics.record import Record

#: Header names of a re-routed copy: where its original was read.
ORIGIN_TOPIC = "erp-origin-topic"
ORIGIN_PARTITION = "erp-origin-partition"
ORIGIN_OFFSET = "erp-origin-offset"
#: The original's broker timestamp (ms), carried as a header rather than as the copy's own
#: timestamp: an upstream producer may set any (negative, year 10000), which a broker or a
#: client may refuse to write again.
ORIGIN_TIMESTAMP = "erp-origin-timestamp"
_NAMES = (ORIGIN_TOPIC, ORIGIN_PARTITION, ORIGIN_OFFSET, ORIGIN_TIMESTAMP)
#: Bytes the origin headers add to a record at most (names, values of the largest
#: coordinates a topic name of 249 characters can have, and Kafka's per-header varints).
ORIGIN_HEADER_BYTES = 512


def home_partition(key: bytes, partitions: int) -> int:
    """The partition murmur2 names for `key` among `partitions`, exactly as Java's and
    aiokafka's default partitioners (and librdkafka's `murmur2_random`) pick it."""
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions


def reroute_to(key: bytes | None, partition: int, partitions: int) -> int | None:
    """Where a record read on `partition` must go to reach its item's state.

    None: handle it where it is (its key's home partition, or a null key, which names no
    item and is refused wherever it arrives); else the partition of the repartition topic.
    """
    if key is None:
        return None
    home = home_partition(key, partitions)
    return None if home == partition else home


def origin_headers(record: Record) -> list[tuple[str, bytes]]:
    """The headers of `record`'s re-routed copy: its topic, partition, offset and broker
    timestamp."""
    return [
        (ORIGIN_TOPIC, record.topic.encode()),
        (ORIGIN_PARTITION, str(record.partition).encode()),
        (ORIGIN_OFFSET, str(record.offset).encode()),
        (ORIGIN_TIMESTAMP, str(record.timestamp_ms).encode()),
    ]


def origin_of(
    copy: Record, headers: Iterable[tuple[str, Any]] | Mapping[str, Any] | None
) -> Record:
    """The record a copy read from the repartition topic stands for: its key and value, at
    the coordinates and with the broker timestamp its origin headers name.

    Raises ValueError when a header is missing, repeated or malformed (a record the pipeline
    did not write).
    """
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers or ())
    found: dict[str, bytes] = {}
    for name, value in pairs:
        if name in _NAMES:
            if name in found or not isinstance(value, bytes):
                raise ValueError(f"header {name} is repeated or has no value")
            found[name] = value
    missing = [n for n in _NAMES if n not in found]
    if missing:
        raise ValueError(f"no {', '.join(missing)} header: not a re-routed record")
    try:
        topic = found[ORIGIN_TOPIC].decode("utf-8")
        partition, offset = int(found[ORIGIN_PARTITION]), int(found[ORIGIN_OFFSET])
        timestamp_ms = int(found[ORIGIN_TIMESTAMP])
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"malformed origin header: {exc}") from None
    if not topic or partition < 0 or offset < 0:
        raise ValueError("malformed origin header: empty topic or negative coordinate")
    return Record(
        topic,
        partition,
        offset,
        copy.key,
        copy.value,
        timestamp_ms,
        copy.header_error,
    )


def copy_bytes(record: Record) -> int:
    """The size of `record`'s re-routed copy as Kafka limits it: key, value and headers."""
    return len(record.key or b"") + len(record.value or b"") + ORIGIN_HEADER_BYTES


__all__ = [
    "ORIGIN_HEADER_BYTES",
    "ORIGIN_OFFSET",
    "ORIGIN_PARTITION",
    "ORIGIN_TIMESTAMP",
    "ORIGIN_TOPIC",
    "copy_bytes",
    "home_partition",
    "origin_headers",
    "origin_of",
    "reroute_to",
]
