"""The group's committed offset keeps moving after the processor seeks a partition back.

faust commits a partition's offset only over a run of acknowledged offsets contiguous from its
own committed offset (`Consumer._new_offset`): once a seek back starts the re-fetch at the
checkpoint, past the group's commit, the offsets in between are never acknowledged and the
commit stays where it was for as long as the partition stays assigned, though every record is
applied (seen once in CI: `erp-processor erp.export-results/0 46<75` for six minutes after a
restart, `records from offset 54 were not applied (gap); seeking back`).

These tests run the processor's real seek (`build_app`'s, on faust's consumer) and faust's
real acknowledgement and commit bookkeeping; only the consumer thread's `seek_wait` is
replaced by what faust's does to that bookkeeping (no broker).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faust.types import TP
from faust.types.tuples import Message

from pipeline.processor import checkpoints
from pipeline.processor.app import build_app
from pipeline.processor.step import Input
from pipeline.settings import Settings
from tests.support.processor import Probe, Synced
from tests.support.rules import directory
from topics.record import Record

TOPIC = "erp.export-results"
TP0 = TP(TOPIC, 0)
#: As in the CI run: the group committed 46, the checkpoint 54, the partition ends at 75.
COMMITTED, CHECKPOINT, END = 46, 54, 75


class Partition:
    """A processor (real faust consumer, fakes for the broker-facing ports) and one input
    partition whose records it is handed as faust's fetcher and `take_events` would: each
    fetched batch consumed, then every record of it acknowledged."""

    def __init__(self) -> None:
        self.table: dict[bytes, bytes] = {}
        self.published: list[Any] = []
        self.sought: list[int] = []
        self.processor = build_app(
            Settings(kafka_bootstrap_servers="127.0.0.1:1", processor_store="memory"),
            table=self.table,
            directory=directory(),
            replica=Synced,
            probe=Probe(records=set(range(END))),
            publish=self._publish,
            durable=self._durable,
            reroute=self._reroute,
        )
        app = self.processor.app
        self.consumer: Any = app.consumer
        self.consumer.seek_wait = self._seek_wait
        app.topics._acking_topics.add(TOPIC)  # as subscribing to the agent's topics does
        #: where fetching goes on (None: the partition has no more to give for now)
        self.position: int | None = None

    async def _publish(self, event: Any) -> None:
        self.published.append(event)

    async def _durable(self) -> None:
        return None

    async def _reroute(self, record: Record, partition: int) -> None:
        raise AssertionError("nothing is re-routed here")

    async def _seek_wait(self, partitions: Mapping[TP, int]) -> None:
        # what faust's `AIOKafkaConsumerThread._seek_wait` does besides moving the fetcher
        for tp, offset in partitions.items():
            self.sought.append(offset)
            self.consumer._read_offset[tp] = offset
            self.position = offset

    def assigned(self, committed: int, checkpoint: int) -> None:
        """The partition assigned: faust's bookkeeping as `perform_seek` leaves it, the
        checkpoint as the restored changelog holds it."""
        self.consumer._committed_offset[TP0] = committed
        self.consumer._read_offset[TP0] = committed
        self.table[checkpoints.key(TOPIC, 0)] = checkpoints.encode(checkpoint)

    async def deliver(self, offsets: range) -> None:
        """One fetched batch of these offsets: consumed, then acknowledged."""
        messages = [
            Message(TOPIC, 0, o, 0.0, 0, None, b"k", b"not json", None, tp=TP0) for o in offsets
        ]
        self.position = None
        await self.processor.step.consume_batch(
            [Input(Record(TOPIC, 0, m.offset, m.key, m.value or b"")) for m in messages]
        )
        for message in messages:
            self.consumer.ack(message)

    async def refetch(self) -> None:
        """Whatever a seek made the fetcher read again, up to the partition's end."""
        while self.position is not None:
            await self.deliver(range(self.position, END))

    def commit_offset(self) -> int | None:
        """The offset faust would commit for the partition now (None: none)."""
        return self.consumer._filter_committable_offsets({TP0}).get(TP0)


async def test_a_seek_back_past_the_group_commit_lets_faust_commit_to_the_end() -> None:
    partition = Partition()
    partition.assigned(COMMITTED, CHECKPOINT)
    # the first records this instance gets lie past its checkpoint (faust lost the fetch
    # before them): a gap, sought back
    await partition.deliver(range(60, END))
    assert partition.sought, "the gap was not sought back"
    await partition.refetch()
    assert checkpoints.decode(partition.table[checkpoints.key(TOPIC, 0)]) == END
    assert partition.commit_offset() == END


async def test_records_between_the_group_commit_and_the_checkpoint_are_skipped_again() -> None:
    partition = Partition()
    partition.assigned(COMMITTED, CHECKPOINT)
    await partition.deliver(range(60, END))
    await partition.refetch()
    # each record past the checkpoint was applied once: one dead letter each
    assert sorted(e.payload.source.offset for e in partition.published) == list(
        range(CHECKPOINT, END)
    )


async def test_a_seek_back_to_a_checkpoint_behind_the_group_commit_goes_to_the_checkpoint() -> None:
    partition = Partition()
    partition.assigned(committed=58, checkpoint=54)
    await partition.deliver(range(60, END))
    assert partition.sought == [54]
    await partition.refetch()
    assert partition.commit_offset() == END
