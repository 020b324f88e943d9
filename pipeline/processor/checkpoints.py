"""Per-partition checkpoints: the next offset of each input partition the processor expects.

The processor's offsets committed to the consumer group are only where fetching starts. What
has really been applied is kept in the items table itself, next to the item states it guards:
after a record's events are published and its item state stored, the checkpoint of its
partition moves to the record's offset + 1 (same changelog partition, written after the
state, so a restored checkpoint never runs ahead of the states it covers).

Each record is then checked against its partition's checkpoint:

- below it: already applied (a redelivery after a crash or rebalance), skipped;
- at it: the next record, applied;
- above it: records in between were never applied. This happens when the consumer loses
  fetched records around a rebalance and its group offset moves past them anyway. The
  processor then looks whether records really exist in between (offsets a transactional
  marker or compaction left empty do not count) and, if so, seeks the partition back to the
  checkpoint instead of applying the later record (the seek itself starts at the group's
  committed offset when that is lower, `pipeline.processor.app.refetch_from`, so that the
  group's offset can move past the records in between).

Pure functions and a small bookkeeping class; the I/O lives in `pipeline.processor.healing`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

#: The checkpoint keys share the items table with item keys (`company:type:id`), which never
#: start with a NUL byte.
PREFIX = b"\x00checkpoint\x00"
#: ...nor do the marks of originals applied through the repartition topic.
ROUTED_PREFIX = b"\x00routed\x00"
#: A partition with records past its checkpoint is re-sought when the agent has received no
#: record at all for this long (records are not merely queued behind others)...
STALL_S = 10.0
#: ...or when none of its own records arrived for this long, however busy the agent is.
LONG_STALL_S = 60.0
#: How long a seek back to a checkpoint is given before the same gap may seek again.
RESEEK_WAIT_S = 10.0


class Verdict(StrEnum):
    """What to do with a record, given its partition's checkpoint."""

    APPLY = "apply"
    SKIP = "skip"
    GAP = "gap"


def key(topic: str, partition: int) -> bytes:
    """The table key of one input partition's checkpoint."""
    return PREFIX + f"{topic}\x00{partition}".encode()


def routed_key(partition: int, topic: str, origin_partition: int) -> bytes:
    """The table key of the next original offset expected from `topic`[`origin_partition`]
    on the repartition topic's `partition` (see `ItemStore.routed_before`)."""
    return ROUTED_PREFIX + f"{partition}\x00{topic}\x00{origin_partition}".encode()


def decode(value: bytes | None) -> int | None:
    """A stored checkpoint (None when the partition has none yet)."""
    return int(value) if value else None


def encode(next_offset: int) -> bytes:
    """The value stored for a checkpoint."""
    return str(next_offset).encode()


def verdict(expected: int, offset: int) -> Verdict:
    """Apply the expected record, skip earlier ones, flag a gap before later ones."""
    if offset < expected:
        return Verdict.SKIP
    if offset == expected:
        return Verdict.APPLY
    return Verdict.GAP


def idle_long(partition_idle_s: float, agent_idle_s: float) -> bool:
    """Whether a partition has waited long enough for its records to count as stalled: the
    agent had nothing at all to do for a while, or the partition nothing for a long while."""
    return agent_idle_s >= STALL_S or partition_idle_s >= LONG_STALL_S


def stalled(
    expected: int | None, highwater: int | None, partition_idle_s: float, agent_idle_s: float
) -> bool:
    """Whether a partition has records past its checkpoint that have stopped coming.

    `highwater` is the partition's end offset (None: unknown, nothing to say).
    """
    if highwater is None or (expected or 0) >= highwater:
        return False
    return idle_long(partition_idle_s, agent_idle_s)


@dataclass
class Reseeks:
    """Seeks back to a checkpoint in flight, so that one gap causes one seek at a time."""

    pending: dict[tuple[str, int], tuple[int, float]] = field(default_factory=dict)

    def due(self, tp: tuple[str, int], expected: int, now: float) -> bool:
        """True (and recorded) unless a seek to `expected` was made less than a wait ago."""
        previous = self.pending.get(tp)
        if previous is not None and previous[0] == expected and now - previous[1] < RESEEK_WAIT_S:
            return False
        self.pending[tp] = (expected, now)
        return True

    def done(self, tp: tuple[str, int]) -> None:
        """The partition is applying records again."""
        self.pending.pop(tp, None)


__all__ = [
    "LONG_STALL_S",
    "PREFIX",
    "RESEEK_WAIT_S",
    "ROUTED_PREFIX",
    "STALL_S",
    "Reseeks",
    "Verdict",
    "decode",
    "encode",
    "idle_long",
    "key",
    "routed_key",
    "stalled",
    "verdict",
]
