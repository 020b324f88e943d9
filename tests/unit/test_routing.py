"""Re-routing records that arrived on another partition than their key names: the pure
decision, the origin headers' round trip, and the step's use of them (no broker)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner

from consumers.dev import samples as se
from pipeline.processor import checkpoints, routing
from tests.support.processor import Harness, Probe
from topics.record import Record
from topics.specs import ITEM_ROUTES, SUBMISSIONS

PARTITIONS = SUBMISSIONS.partitions

#: Apache Kafka's own vectors for `Utils.murmur2` (clients' UtilsTest), as signed ints.
JAVA_MURMUR2 = {
    "21": -973932308,
    "foobar": -790332482,
    "a-little-bit-long-string": -985981536,
    "a-little-bit-longer-string": -1486304829,
    "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    "abc": 479470107,
}


@pytest.mark.parametrize(("text", "signed"), sorted(JAVA_MURMUR2.items()))
def test_the_home_partition_is_javas_murmur2_positive_modulo(text: str, signed: int) -> None:
    assert routing.home_partition(text.encode(), PARTITIONS) == (signed & 0x7FFFFFFF) % PARTITIONS


def test_the_home_partition_is_where_aiokafka_and_faust_put_a_key() -> None:
    everywhere = list(range(PARTITIONS))
    for n in range(300):
        key = f"acme-builders:commitment:sc-{n}".encode()
        assert routing.home_partition(key, PARTITIONS) == DefaultPartitioner()(
            key, everywhere, everywhere
        )


def test_a_record_is_handled_on_its_home_partition_and_re_routed_from_any_other() -> None:
    key = b"acme-builders:project:prj-100"
    home = routing.home_partition(key, PARTITIONS)
    assert routing.reroute_to(key, home, PARTITIONS) is None
    for elsewhere in set(range(PARTITIONS)) - {home}:
        assert routing.reroute_to(key, elsewhere, PARTITIONS) == home
    # a null key names no item: handled (refused) wherever it arrives
    assert all(routing.reroute_to(None, p, PARTITIONS) is None for p in range(PARTITIONS))


def test_origin_headers_round_trip_the_coordinates_and_keep_the_copys_bytes() -> None:
    original = Record("staging.erp.decisions", 4, 9_223_372_036_854_775_807, b"k", b"{}", 1700)
    headers = routing.origin_headers(original)
    copy = Record("staging.erp.item-routes", 1, 17, b"k", b"{}", 99)
    assert routing.origin_of(copy, [("event_type", b"ItemAccepted"), *headers]) == original
    # any broker timestamp an upstream producer set comes back, never written again as one
    for odd in (0, -1, 2**63 - 1):
        at = Record("erp.submissions", 0, 0, b"k", b"{}", odd)
        assert routing.origin_of(copy, routing.origin_headers(at)).timestamp_ms == odd
    assert routing.origin_of(copy, dict(headers)) == original
    size = sum(len(n) + len(v) for n, v in headers)
    assert size + 4 * 10 <= routing.ORIGIN_HEADER_BYTES  # a varint per name, value, header


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(routing.ORIGIN_TOPIC, b"erp.submissions"), (routing.ORIGIN_PARTITION, b"1")],
        [
            (routing.ORIGIN_TOPIC, b"erp.submissions"),
            (routing.ORIGIN_PARTITION, b"1"),
            (routing.ORIGIN_OFFSET, b"2"),
        ],
        [
            (routing.ORIGIN_TOPIC, b"erp.submissions"),
            (routing.ORIGIN_PARTITION, b"1"),
            (routing.ORIGIN_OFFSET, b"x"),
        ],
        [
            (routing.ORIGIN_TOPIC, b"erp.submissions"),
            (routing.ORIGIN_TOPIC, b"erp.decisions"),
            (routing.ORIGIN_PARTITION, b"1"),
            (routing.ORIGIN_OFFSET, b"2"),
        ],
        [
            (routing.ORIGIN_TOPIC, b"\xff"),
            (routing.ORIGIN_PARTITION, b"1"),
            (routing.ORIGIN_OFFSET, b"2"),
        ],
        [
            (routing.ORIGIN_TOPIC, b"erp.submissions"),
            (routing.ORIGIN_PARTITION, b"-1"),
            (routing.ORIGIN_OFFSET, b"2"),
        ],
        [
            (routing.ORIGIN_TOPIC, b"erp.submissions"),
            (routing.ORIGIN_PARTITION, None),
            (routing.ORIGIN_OFFSET, b"2"),
        ],
    ],
)
def test_a_copy_without_whole_origin_headers_is_not_a_re_routed_record(headers: Any) -> None:
    with pytest.raises(ValueError):
        routing.origin_of(Record("erp.item-routes", 0, 0, b"k", b"{}"), headers)


def _record(topic: str, partition: int, offset: int, event: dict[str, Any]) -> Record:
    item = event["item"]
    key = f"{event['company_id']}:{item['type']}:{item['id']}".encode()
    return Record(topic, partition, offset, key, json.dumps(event).encode())


def _away(record: Record) -> int:
    """A partition other than the record's home."""
    assert record.key is not None
    return (routing.home_partition(record.key, PARTITIONS) + 1) % PARTITIONS


async def test_a_record_on_a_foreign_partition_is_re_routed_and_only_then_counts_as_applied() -> (
    None
):
    harness = Harness(probe=Probe())
    submitted = _record(SUBMISSIONS.name, 0, 0, se.project_submitted("prj-r1"))
    assert submitted.key is not None
    home = routing.home_partition(submitted.key, PARTITIONS)
    foreign = Record(SUBMISSIONS.name, _away(submitted), 0, submitted.key, submitted.value)
    await harness.processor.step.consume(foreign)
    assert harness.rerouted == [(foreign, home)]
    assert harness.published == []  # nothing applied here: the item lives on `home`
    assert not harness.items.get(submitted.key)
    # the checkpoint moved only after the copy was acknowledged
    checkpoint = checkpoints.key(SUBMISSIONS.name, foreign.partition)
    assert harness.calls[-2:] == [("reroute", home), ("put", checkpoint)]
    metric = harness.processor.step.metrics.processor_reroutes.labels(SUBMISSIONS.name)
    assert metric._value.get() == 1


async def test_a_copy_is_handled_as_its_original_and_moves_the_repartition_checkpoint() -> None:
    harness = Harness(probe=Probe())
    accepted = se.accepted("project", "prj-r2", erp_job_id="J", job_template="T")
    original = _record("erp.decisions", 5, 41, accepted)  # no submission: refused
    copy = Record(ITEM_ROUTES.name, 3, 0, original.key, original.value)
    await harness.processor.step.consume(copy, routing.origin_headers(original))
    assert harness.rerouted == []
    (dead,) = harness.published
    assert dead.event_type == "EventRefused"
    source = dead.payload.source
    assert (source.topic, source.partition, source.offset) == ("erp.decisions", 5, 41)
    assert harness.items[checkpoints.key(ITEM_ROUTES.name, 3)] == checkpoints.encode(1)
    assert checkpoints.key("erp.decisions", 5) not in harness.items


async def test_a_copy_then_applies_the_rules_on_its_items_state() -> None:
    harness = Harness(probe=Probe())
    original = _record(SUBMISSIONS.name, 2, 7, se.project_submitted("prj-r3"))
    copy = Record(ITEM_ROUTES.name, 0, 0, original.key, original.value)
    await harness.processor.step.consume(copy, routing.origin_headers(original))
    (status,) = harness.published
    assert status.payload.status == "ready_to_export"


async def test_a_record_with_a_wrong_or_null_key_is_refused_where_it_arrives() -> None:
    harness = Harness(probe=Probe())
    event = se.project_submitted("prj-r4")
    value = json.dumps(event).encode()
    wrong = b"other-co:project:prj-r4"
    partition = (routing.home_partition(wrong, PARTITIONS) + 1) % PARTITIONS
    for offset, key in enumerate([wrong, None]):
        await harness.processor.step.consume(
            Record(SUBMISSIONS.name, partition, offset, key, value)
        )
    assert harness.rerouted == []
    assert [e.payload.stage.value for e in harness.published] == ["schema", "schema"]


async def test_an_undecodable_record_on_a_foreign_partition_is_refused_where_it_arrives() -> None:
    harness = Harness(probe=Probe())
    key = b"acme-builders:project:prj-r5"
    partition = (routing.home_partition(key, PARTITIONS) + 1) % PARTITIONS
    await harness.processor.step.consume(Record(SUBMISSIONS.name, partition, 0, key, b"{"))
    assert harness.rerouted == []
    (dead,) = harness.published
    assert dead.payload.stage.value == "decode" and dead.payload.source.partition == partition


async def test_a_record_on_the_repartition_topic_without_origin_is_dead_lettered() -> None:
    harness = Harness(probe=Probe())
    value = json.dumps(se.project_submitted("prj-r6")).encode()
    await harness.processor.step.consume(
        Record(ITEM_ROUTES.name, 2, 0, b"acme-builders:project:prj-r6", value)
    )
    (dead,) = harness.published
    assert dead.payload.stage.value == "decode"
    assert "not a re-routed record" in dead.payload.error
    assert (dead.payload.source.topic, dead.payload.source.partition) == (ITEM_ROUTES.name, 2)
    assert harness.items[checkpoints.key(ITEM_ROUTES.name, 2)] == checkpoints.encode(1)


async def test_a_record_too_big_to_carry_its_origin_is_refused_not_applied_elsewhere() -> None:
    harness = Harness(probe=Probe())
    record = _record(SUBMISSIONS.name, 0, 0, se.project_submitted("prj-r7"))
    assert record.value is not None
    padded = record.value + b" " * 999_000  # valid JSON, small state, a record near the limit
    foreign = Record(SUBMISSIONS.name, _away(record), 0, record.key, padded)
    await harness.processor.step.consume(foreign)
    assert harness.rerouted == []
    (dead,) = harness.published
    assert dead.payload.stage.value == "business_rule"
    assert dead.payload.error.startswith("too big to apply: re-routed")


async def test_a_second_copy_of_one_original_is_a_duplicate_not_applied_twice() -> None:
    """A crash after a copy's ack and before its original's checkpoint re-routes it again."""
    harness = Harness(probe=Probe())
    refused = se.accepted("project", "prj-r8", erp_job_id="J", job_template="T")  # no such item
    original = _record("erp.decisions", 2, 7, refused)
    rejected = se.rejected("project", "prj-r8", "No")
    later = _record("erp.decisions", 2, 9, rejected)
    copies = [(original, 0), (original, 1), (later, 2)]
    for origin, offset in copies:
        copy = Record(ITEM_ROUTES.name, 4, offset, origin.key, origin.value)
        await harness.processor.step.consume(copy, routing.origin_headers(origin))
    # one dead letter per original: the repeat was skipped, the later original applied
    sources = [(e.payload.source.offset, e.payload.refused_event_id) for e in harness.published]
    assert sources == [(7, refused["event_id"]), (9, rejected["event_id"])]
    assert harness.items[checkpoints.key(ITEM_ROUTES.name, 4)] == checkpoints.encode(3)
    metrics = harness.processor.step.metrics.events_consumed
    assert metrics.labels(ITEM_ROUTES.name, "duplicate")._value.get() == 1


async def test_the_repartition_topic_has_checkpoints_and_gap_healing_of_its_own() -> None:
    harness = Harness(probe=Probe(records={0, 1, 2}))
    originals = [
        _record(SUBMISSIONS.name, 5, n, se.project_submitted(f"prj-g{n}")) for n in range(3)
    ]

    async def deliver(offset: int) -> None:
        origin = originals[offset]
        copy = Record(ITEM_ROUTES.name, 1, offset, origin.key, origin.value)
        await harness.processor.step.consume(copy, routing.origin_headers(origin))

    await deliver(0)
    await deliver(2)  # offset 1 never reached the agent: sought back, not applied
    assert harness.seeks == [((ITEM_ROUTES.name, 1), 1)]
    assert [e.item.id for e in harness.published] == ["prj-g0"]
    await deliver(1)
    await deliver(2)
    assert [e.item.id for e in harness.published] == ["prj-g0", "prj-g1", "prj-g2"]
    assert harness.items[checkpoints.key(ITEM_ROUTES.name, 1)] == checkpoints.encode(3)
