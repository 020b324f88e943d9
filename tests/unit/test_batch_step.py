"""The batched step: one fetched batch applied with its own evolving states, one changelog
flush, one send, then the checkpoints; gaps, rules errors, leftovers and sealing (no broker)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from consumers.dev import samples as se
from pipeline.processor import checkpoints, routing
from pipeline.processor.step import Input
from pipeline.rules import outbox
from tests.support.processor import Harness, Probe
from topics.record import Record
from topics.specs import DECISIONS, ITEM_ROUTES, SUBMISSIONS

PARTITIONS = SUBMISSIONS.partitions
ACCEPT = {"erp_job_id": "J-1", "job_template": "T"}


def _key(event: dict[str, Any]) -> bytes:
    item = event["item"]
    return f"{event['company_id']}:{item['type']}:{item['id']}".encode()


def _home(event: dict[str, Any]) -> int:
    return routing.home_partition(_key(event), PARTITIONS)


def _record(topic: str, offset: int, event: dict[str, Any], partition: int | None = None) -> Record:
    partition = _home(event) if partition is None else partition
    return Record(topic, partition, offset, _key(event), json.dumps(event).encode())


def _in_order(topic: str, events: list[dict[str, Any]], start: int = 0) -> list[Record]:
    """Records of `events` on their home partitions, offsets counted per partition."""
    offsets: dict[int, int] = {}
    records = []
    for event in events:
        partition = _home(event)
        offsets[partition] = offsets.get(partition, start - 1) + 1
        records.append(_record(topic, offsets[partition], event))
    return records


async def _apply(harness: Harness, *records: Record) -> None:
    await harness.processor.step.consume_batch([Input(r) for r in records])


def _count(calls: list[tuple[str, Any]], kind: str) -> int:
    return sum(1 for call, _ in calls if call == kind)


async def test_two_records_of_one_item_in_a_batch_see_each_others_state_with_one_flush() -> None:
    harness = Harness()
    submitted = se.project_submitted("prj-b1")
    accepted = se.accepted("project", "prj-b1", **ACCEPT)
    await _apply(
        harness, _record(SUBMISSIONS.name, 0, submitted), _record(DECISIONS.name, 0, accepted)
    )
    statuses = [e.payload.status for e in harness.published if e.event_type == "ItemStatusChanged"]
    assert statuses == ["ready_to_export", "exporting"]
    assert [e.event_type for e in harness.published].count("ExportRequested") == 1
    key = _key(submitted).decode()
    partition = _home(submitted)
    n = len(harness.published)
    assert harness.calls == [
        ("put", outbox.key(key)),
        ("put", key.encode()),
        ("durable", None),
        *harness.calls[3 : 3 + n],
        ("delete", outbox.key(key)),
        ("put", checkpoints.key(SUBMISSIONS.name, partition)),
        ("put", checkpoints.key(DECISIONS.name, partition)),
    ]
    assert all(call == "publish" for call, _ in harness.calls[3 : 3 + n])
    # everything derived was in the outbox, durable, when it was published
    assert all(outbox.key(key) in keys for keys in harness.keys_at_publish)


async def test_many_items_in_a_batch_take_one_durable_flush_and_checkpoints_move_last() -> None:
    harness = Harness()
    events = [se.project_submitted(f"prj-m{n}") for n in range(20)]
    records = _in_order(SUBMISSIONS.name, events)
    offsets = {r.partition: r.offset for r in records}
    await _apply(harness, *records)
    assert len(harness.published) == 20
    assert _count(harness.calls, "durable") == 1
    last_publish = max(n for n, (call, _) in enumerate(harness.calls) if call == "publish")
    first_checkpoint = min(
        n
        for n, (call, key) in enumerate(harness.calls)
        if call == "put" and key.startswith(checkpoints.PREFIX)
    )
    assert last_publish < first_checkpoint
    for partition, last in offsets.items():
        stored = harness.items[checkpoints.key(SUBMISSIONS.name, partition)]
        assert checkpoints.decode(stored) == last + 1


async def test_a_gap_stops_its_partition_for_the_rest_of_the_batch_not_the_others() -> None:
    harness = Harness(probe=Probe(records={0, 1, 2, 3}))
    first = se.project_submitted("prj-g0")
    home = _home(first)
    same = [se.project_submitted(f"prj-gs{n}") for n in range(3)]
    other = next(
        se.project_submitted(f"prj-go{n}")
        for n in range(100)
        if _home(se.project_submitted(f"prj-go{n}")) != home
    )
    await _apply(
        harness,
        _record(SUBMISSIONS.name, 0, first, partition=home),
        _record(SUBMISSIONS.name, 2, same[0], partition=home),  # offset 1 never arrived
        _record(SUBMISSIONS.name, 0, other),
        _record(SUBMISSIONS.name, 3, same[1], partition=home),
    )
    assert harness.seeks == [((SUBMISSIONS.name, home), 1)]
    assert sorted(e.item.id for e in harness.published) == sorted(["prj-g0", other["item"]["id"]])
    assert harness.items[checkpoints.key(SUBMISSIONS.name, home)] == checkpoints.encode(1)


async def test_records_below_the_batchs_checkpoint_are_duplicates() -> None:
    harness = Harness()
    event = se.project_submitted("prj-d1")
    record = _record(SUBMISSIONS.name, 0, event)
    await _apply(harness, record, record)  # redelivered within the same batch
    assert len(harness.published) == 1
    metric = harness.processor.step.metrics.events_consumed.labels(SUBMISSIONS.name, "duplicate")
    assert metric._value.get() == 1


async def test_a_rules_error_dead_letters_that_record_only() -> None:
    harness = Harness()
    harness.processor.step.settings = harness.processor.step.settings.model_copy(
        update={"processor_poison_item_id": "prj-poison"}
    )
    poison = se.project_submitted("prj-poison")
    fine = next(
        se.project_submitted(f"prj-f{n}")
        for n in range(100)
        if _home(se.project_submitted(f"prj-f{n}")) == _home(poison)
    )
    await _apply(harness, *_in_order(SUBMISSIONS.name, [poison, fine]))
    by_type = {e.event_type: e for e in harness.published}
    assert by_type["EventRefused"].payload.stage == "business_rule"
    assert by_type["ItemStatusChanged"].item.id == fine["item"]["id"]
    stored = harness.items[checkpoints.key(SUBMISSIONS.name, _home(poison))]
    assert checkpoints.decode(stored) == 2  # both applied


async def test_what_a_crash_left_in_an_outbox_goes_out_first_in_the_next_batch() -> None:
    harness = Harness(publish_failures=1)
    submitted = se.project_submitted("prj-l1")
    record = _record(SUBMISSIONS.name, 0, submitted)
    with pytest.raises(ConnectionError):
        await _apply(harness, record)
    assert harness.published == []
    accepted = _record(DECISIONS.name, 0, se.accepted("project", "prj-l1", **ACCEPT))
    await _apply(harness, record, accepted)
    statuses = [e.payload.status for e in harness.published if e.event_type == "ItemStatusChanged"]
    assert statuses == ["ready_to_export", "exporting"]
    assert outbox.key(_key(submitted).decode()) not in harness.items


async def test_the_directory_catches_up_once_per_batch_before_the_first_judgement() -> None:
    harness = Harness()
    syncs: list[int] = []

    async def sync() -> bool:
        syncs.append(len(harness.published))
        return True

    harness.processor.step.sync_directory = sync
    events = [se.project_submitted(f"prj-j{n}") for n in range(3)]
    await _apply(harness, *_in_order(SUBMISSIONS.name, events))
    assert syncs == []  # nothing judged: no catch-up
    decisions = [se.rejected("project", f"prj-j{n}", "No") for n in range(3)]
    await _apply(harness, *_in_order(DECISIONS.name, decisions))
    assert syncs == [3]  # once, before the first decision was judged
    statuses = [
        e.payload.status for e in harness.published[3:] if e.event_type == "ItemStatusChanged"
    ]
    assert statuses == ["rejected"] * 3


async def test_sealed_each_changelog_partition_ends_with_one_checkpoint_alone_after_a_flush() -> (
    None
):
    harness = Harness()
    harness.processor.step.seal = True
    submitted = se.project_submitted("prj-s1")
    partition = _home(submitted)
    accepted = se.accepted("project", "prj-s1", **ACCEPT)
    await _apply(
        harness, _record(SUBMISSIONS.name, 0, submitted), _record(DECISIONS.name, 0, accepted)
    )
    key = _key(submitted)
    first_publish = next(n for n, (call, _) in enumerate(harness.calls) if call == "publish")
    # the state is written again alone and flushed before anything derived leaves
    assert harness.calls[:first_publish] == [
        ("put", outbox.key(key.decode())),
        ("put", key),
        ("durable", None),
        ("put", key),
        ("durable", None),
    ]
    last = checkpoints.key(DECISIONS.name, partition)
    assert harness.calls[-4:] == [
        ("put", checkpoints.key(SUBMISSIONS.name, partition)),
        ("durable", None),
        ("put", last),
        ("durable", None),
    ]


async def test_copies_of_one_original_in_one_batch_are_applied_once() -> None:
    harness = Harness()
    refused = se.accepted("project", "prj-c8", **ACCEPT)  # no such item: dead-lettered
    original = _record(DECISIONS.name, 7, refused, partition=2)
    copies = [Record(ITEM_ROUTES.name, 4, n, original.key, original.value) for n in range(2)]
    await harness.processor.step.consume_batch(
        [Input(c, routing.origin_headers(original)) for c in copies]
    )
    assert len(harness.published) == 1
    assert harness.items[checkpoints.key(ITEM_ROUTES.name, 4)] == checkpoints.encode(2)


async def test_a_batch_that_fails_counts_none_of_its_records() -> None:
    harness = Harness(publish_failures=1)
    record = _record(SUBMISSIONS.name, 0, se.project_submitted("prj-n1"))
    with pytest.raises(ConnectionError):
        await _apply(harness, record)
    consumed = harness.processor.step.metrics.events_consumed
    assert consumed.labels(SUBMISSIONS.name, "processed")._value.get() == 0
    await _apply(harness, record)  # applied again: its outcome is counted now, once
    assert consumed.labels(SUBMISSIONS.name, "duplicate")._value.get() == 1
