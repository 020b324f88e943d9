"""Input-partition checkpoints: the pure rules, the processor's use of them, local state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from consumers.dev import samples as se
from pipeline.processor import checkpoints
from pipeline.processor.checkpoints import Reseeks, Verdict
from pipeline.processor.config import state_dir
from pipeline.processor.local_state import CLEAN_SHUTDOWN_MARK, drop_unclean_state
from pipeline.settings import Settings
from tests.support.processor import Harness, Probe
from topics.record import Record

TOPIC = "erp.submissions"


def test_verdict_skips_applies_and_flags_gaps() -> None:
    assert checkpoints.verdict(5, 4) is Verdict.SKIP
    assert checkpoints.verdict(5, 5) is Verdict.APPLY
    assert checkpoints.verdict(5, 6) is Verdict.GAP


def test_keys_do_not_collide_with_items_or_other_partitions() -> None:
    assert checkpoints.key(TOPIC, 1) != checkpoints.key(TOPIC, 11)
    assert checkpoints.key(TOPIC, 1).startswith(b"\x00")
    assert checkpoints.decode(checkpoints.encode(42)) == 42
    assert checkpoints.decode(None) is None


def test_a_partition_is_stalled_only_with_records_past_it_that_stopped_coming() -> None:
    quiet, busy = checkpoints.STALL_S + 1, 0.0
    assert checkpoints.stalled(3, 10, partition_idle_s=quiet, agent_idle_s=quiet)
    assert checkpoints.stalled(None, 1, partition_idle_s=quiet, agent_idle_s=quiet)
    assert not checkpoints.stalled(10, 10, partition_idle_s=quiet, agent_idle_s=quiet)
    assert not checkpoints.stalled(3, None, partition_idle_s=quiet, agent_idle_s=quiet)
    # records queued behind a backlog: the agent is busy, the partition not yet long idle
    assert not checkpoints.stalled(3, 10, partition_idle_s=quiet, agent_idle_s=busy)
    long = checkpoints.LONG_STALL_S
    assert checkpoints.stalled(3, 10, partition_idle_s=long, agent_idle_s=busy)


def test_one_seek_per_gap_until_the_wait_is_over() -> None:
    reseeks, tp = Reseeks(), (TOPIC, 0)
    assert reseeks.due(tp, 3, now=100.0)
    assert not reseeks.due(tp, 3, now=100.0 + checkpoints.RESEEK_WAIT_S / 2)
    assert reseeks.due(tp, 4, now=101.0)  # another checkpoint: a new gap
    assert reseeks.due(tp, 4, now=101.0 + checkpoints.RESEEK_WAIT_S)
    reseeks.done(tp)
    assert reseeks.due(tp, 4, now=101.0 + checkpoints.RESEEK_WAIT_S)


class Partition(Harness):
    """The harness delivering records through `consume`, with seeks recorded."""

    def __init__(self, probe: Probe) -> None:
        super().__init__(probe=probe)

    async def deliver(self, offset: int, raw: dict[str, Any]) -> list[Any]:
        before = len(self.published)
        record = Record(TOPIC, 0, offset, b"k", json.dumps(raw).encode())
        await self.processor.step.consume(record)
        return self.published[before:]

    @property
    def checkpoint(self) -> int | None:
        return checkpoints.decode(self.items.get(checkpoints.key(TOPIC, 0)))


async def test_records_in_order_are_applied_and_move_the_checkpoint() -> None:
    partition = Partition(Probe())
    assert await partition.deliver(0, se.project_submitted("p-1"))
    assert await partition.deliver(1, se.project_submitted("p-2"))
    assert partition.checkpoint == 2 and partition.seeks == []


async def test_a_redelivered_record_below_the_checkpoint_is_skipped() -> None:
    partition = Partition(Probe())
    await partition.deliver(0, se.project_submitted("p-1"))
    # even an event never seen before is not applied: offset 0 was applied already
    assert await partition.deliver(0, se.project_submitted("p-9")) == []
    assert partition.checkpoint == 1


async def test_a_record_past_a_gap_seeks_back_once_and_waits_its_turn() -> None:
    partition = Partition(Probe(records={0, 1, 2, 3}))
    await partition.deliver(0, se.project_submitted("p-1"))
    assert await partition.deliver(2, se.project_submitted("p-3")) == []
    assert await partition.deliver(3, se.project_submitted("p-4")) == []
    assert partition.seeks == [((TOPIC, 0), 1)] and partition.checkpoint == 1
    for offset, item in ((1, "p-2"), (2, "p-3"), (3, "p-4")):  # after the seek
        (status,) = await partition.deliver(offset, se.project_submitted(item))
        assert status.item.id == item
    assert partition.checkpoint == 4


async def test_offsets_without_records_are_not_a_gap() -> None:
    """A transactional producer's commit marker takes an offset no consumer ever sees."""
    partition = Partition(Probe(records={0, 2}))
    await partition.deliver(0, se.project_submitted("p-1"))
    assert await partition.deliver(2, se.project_submitted("p-2"))
    assert partition.seeks == [] and partition.checkpoint == 3


async def test_a_partition_first_seen_starts_at_its_log_start() -> None:
    partition = Partition(Probe(start=40, records={40, 41}))
    assert await partition.deliver(41, se.project_submitted("p-2")) == []
    assert partition.seeks == [((TOPIC, 0), 40)]
    assert await partition.deliver(40, se.project_submitted("p-1"))
    assert partition.checkpoint == 41


async def test_records_removed_by_retention_do_not_block_the_partition() -> None:
    partition = Partition(Probe(start=10, records={10, 11}))
    partition.items[checkpoints.key(TOPIC, 0)] = checkpoints.encode(3)
    assert await partition.deliver(10, se.project_submitted("p-1"))
    assert partition.seeks == [] and partition.checkpoint == 11


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(kafka_bootstrap_servers="127.0.0.1:1", data_dir=str(tmp_path))


def _leave_state(settings: Settings) -> Path:
    table = state_dir(settings) / "items-data" / "0.db"
    table.mkdir(parents=True)
    (table / "CURRENT").write_text("x")
    return table


def test_state_of_a_killed_worker_is_dropped(settings: Settings) -> None:
    table = _leave_state(settings)
    assert drop_unclean_state(settings)
    assert not table.exists()


def test_state_of_a_clean_shutdown_is_kept_and_the_mark_consumed(settings: Settings) -> None:
    table = _leave_state(settings)
    (state_dir(settings) / CLEAN_SHUTDOWN_MARK).touch()
    assert not drop_unclean_state(settings)
    assert table.exists()
    assert not (state_dir(settings) / CLEAN_SHUTDOWN_MARK).exists()
    assert drop_unclean_state(settings)  # the next start without a new mark drops it


def test_no_state_nothing_to_drop(settings: Settings) -> None:
    assert not drop_unclean_state(settings)
