"""The foundation on the real broker: topics, round trips, end offsets, partition probes."""

from __future__ import annotations

import json

from pipeline.kafka import create_topics, make_consumer, partitions_of, read_all, stop_consumer
from pipeline.settings import Settings
from tests.support.events import valid_examples
from tests.support.kafka import end_offsets, publish_events
from topics import ALL_TOPICS, TopicSpec, decode, key_of
from topics.specs import SUBMISSIONS


async def test_topics_exist_with_their_spec_and_creation_is_idempotent(settings: Settings) -> None:
    again = await create_topics(settings)
    assert set(again.values()) == {"exists"}
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        for spec in ALL_TOPICS:
            partitions = await partitions_of(consumer, spec.full_name(settings.erp_topic_prefix))
            assert len(partitions) == spec.partitions, spec.name
    finally:
        await stop_consumer(consumer)


async def test_every_event_type_round_trips_through_kafka(settings: Settings) -> None:
    examples = valid_examples()
    for spec in ALL_TOPICS:
        await publish_events(settings, spec, [examples[t] for t in spec.event_types])
    for spec in ALL_TOPICS:
        records = await read_all(settings, spec)
        by_id = {}
        for record in records:
            event = decode(record.value, spec)
            by_id[str(event.event_id)] = (record, event)
        for event_type in spec.event_types:
            example = examples[event_type]
            record, event = by_id[example["event_id"]]
            assert event == decode(json.dumps(example), spec)
            assert record.key.decode() == key_of(event)
            headers = dict(record.headers)
            assert headers["event_type"] == event_type.encode()
            assert headers["schema_version"] == b"1"


async def _burst(
    settings: Settings, spec: TopicSpec, count: int, **producer_options: object
) -> Settings:
    """`count` records pipelined into `spec`'s topic under a new prefix; its settings."""
    import asyncio as aio
    import uuid as uid

    from pipeline.kafka import make_producer

    mine = settings.model_copy(
        update={"erp_topic_prefix": f"{settings.erp_topic_prefix}burst{uid.uuid4().hex[:4]}."}
    )
    await create_topics(mine, [spec])
    producer = make_producer(mine, **producer_options)
    await producer.start()
    try:
        sent = [
            await producer.send(mine.topic(spec.name), b"v" * 200, key=str(n).encode())
            for n in range(count)
        ]
        await aio.gather(*sent)
    finally:
        await producer.stop()
    return mine


async def test_end_offsets_count_every_record_of_a_pipelined_burst(settings: Settings) -> None:
    """The processor's table recovery reads a changelog up to its end offsets: they must be exact.

    The embedded broker reports a partition's end as its last batch's first offset + 1, so the
    stack's producers send one record per batch there (KAFKA_SINGLE_RECORD_BATCHES).
    """
    from topics.specs import STATUS

    count = 3000
    mine = await _burst(settings, STATUS, count)
    ends = await end_offsets(mine, STATUS)
    assert sum(ends.values()) == count


async def test_readers_return_records_past_an_under_reported_end(settings: Settings) -> None:
    """An outside producer that batches (linger) makes the embedded broker under-report end
    offsets; read_all and replay still read every record (here: undecodable ones)."""
    from consumers.replay.read import ReplayOptions, replay

    count = 3000
    batching = settings.model_copy(update={"kafka_single_record_batches": False})
    mine = await _burst(batching, SUBMISSIONS, count, linger_ms=50)
    assert len(await read_all(mine, SUBMISSIONS)) == count
    replayed = await replay(mine, ReplayOptions())
    assert (replayed.records, replayed.undecodable) == (count, count)


async def test_partition_probe_finds_where_records_are(settings: Settings) -> None:
    """The processor's probe: a partition's start, and the first record at or after an offset."""
    from pipeline.processor.probe import PartitionProbe
    from topics.specs import STATUS

    mine = await _burst(settings, STATUS, 60)
    ends = await end_offsets(mine, STATUS)
    partition, end = max(ends.items(), key=lambda pe: pe[1])
    topic = mine.topic(STATUS.name)
    probe = PartitionProbe(mine)
    try:
        assert await probe.log_start(topic, partition) == 0
        assert await probe.first_offset(topic, partition, 0) == 0
        assert await probe.first_offset(topic, partition, end - 1) == end - 1
        assert await probe.first_offset(topic, partition, end, timeout_s=0.5) is None
    finally:
        await probe.stop()
