"""The foundation on the real broker and PostgreSQL: topics, round trips, CLI, migrations."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from pipeline.kafka import create_topics, make_consumer, partitions_of, read_all, stop_consumer
from pipeline.settings import Settings
from tests.support.events import valid_examples
from tests.support.kafka import end_offsets, publish_events
from tests.support.processes import cli
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


async def test_cli_publish_refuses_a_malformed_event_and_sends_nothing(
    settings: Settings, worker_env: dict[str, str], tmp_path: Path
) -> None:
    good, bad = valid_examples()["ItemSubmitted"], valid_examples()["ItemSubmitted"]
    bad["payload"]["amount"] = 250000.0
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([good, bad]))
    before = await end_offsets(settings, SUBMISSIONS)
    result = cli(worker_env, "publish", "erp.submissions", str(path))
    assert result.returncode != 0
    assert "event 2" in result.stderr and "payload.amount" in result.stderr
    assert "nothing was published" in result.stderr
    assert await end_offsets(settings, SUBMISSIONS) == before


async def test_cli_publish_then_tail_shows_the_event(
    settings: Settings, worker_env: dict[str, str]
) -> None:
    event = valid_examples()["ItemRetrieved"]
    result = cli(worker_env, "publish", "erp.submissions", "-", input_text=json.dumps(event))
    assert result.returncode == 0, result.stderr
    assert "published 1 event(s)" in result.stdout
    tailed = cli(worker_env, "tail", "erp.submissions", "--no-follow")
    assert tailed.returncode == 0, tailed.stderr
    ids = [json.loads(line)["event_id"] for line in tailed.stdout.splitlines()]
    assert event["event_id"] in ids


def test_cli_rejects_an_unknown_topic(worker_env: dict[str, str]) -> None:
    result = cli(worker_env, "publish", "erp.nope", "-", input_text="{}")
    assert result.returncode == 2 and "unknown topic" in result.stderr


def test_db_migrate_is_idempotent_and_created_the_read_model(
    settings: Settings, worker_env: dict[str, str]
) -> None:
    result = cli(worker_env, "db", "migrate")
    assert result.returncode == 0, result.stderr
    assert "schema is up to date" in result.stdout
    with psycopg.connect(settings.require_database_url()) as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations")]
        tables = {
            row[0]
            for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
    assert "0001" in versions
    assert {"items", "item_history"} <= tables


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["publish"],
        ["tail"],
        ["dev"],
        ["demo"],
        ["db", "migrate"],
        ["topics", "create"],
        ["schemas"],
    ],
)
def test_every_command_has_help(worker_env: dict[str, str], command: list[str]) -> None:
    result = cli(worker_env, *command, "--help")
    assert result.returncode == 0 and "Usage:" in result.stdout


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
    from pipeline.processor.replicas import PartitionProbe
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
