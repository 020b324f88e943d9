"""The CLI's basic commands as a user runs them: publish, tail, db migrate, --help."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
import pytest

from pipeline.kafka import make_producer
from pipeline.processor.routing import origin_headers
from pipeline.settings import Settings
from tests.support.events import valid_examples
from tests.support.kafka import end_offsets, isolated
from tests.support.processes import cli
from topics.record import Record
from topics.specs import ITEM_ROUTES, SUBMISSIONS


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


async def test_cli_publish_refuses_the_pipelines_internal_topic(
    settings: Settings, worker_env: dict[str, str]
) -> None:
    event = valid_examples()["ItemRetrieved"]
    before = await end_offsets(settings, ITEM_ROUTES)
    result = cli(worker_env, "publish", "erp.item-routes", "-", input_text=json.dumps(event))
    assert result.returncode != 0 and "the pipeline's own" in result.stderr
    assert await end_offsets(settings, ITEM_ROUTES) == before


async def test_cli_tail_of_the_internal_topic_shows_the_events_its_copies_stand_for(
    settings: Settings, worker_env: dict[str, str]
) -> None:
    mine = await isolated(settings, f"routes{uuid.uuid4().hex[:6]}")
    env = {**worker_env, "ERP_TOPIC_PREFIX": mine.erp_topic_prefix}
    event = valid_examples()["ItemRetrieved"]
    value = json.dumps(event).encode()
    original = Record(mine.topic(SUBMISSIONS.name), 4, 17, b"k", value, 1_700_000_000_000)
    producer = make_producer(mine)
    await producer.start()
    try:  # a copy as the processor writes it, and a record that is not one
        routes = mine.topic(ITEM_ROUTES.name)
        await producer.send_and_wait(routes, value, key=b"k", headers=origin_headers(original))
        await producer.send_and_wait(routes, value, key=b"k")
    finally:
        await producer.stop()
    tailed = cli(env, "tail", "erp.item-routes", "--no-follow")
    assert tailed.returncode == 0, tailed.stderr
    assert [json.loads(line)["event_id"] for line in tailed.stdout.splitlines()] == [
        event["event_id"]
    ]
    (refused,) = [json.loads(line) for line in tailed.stderr.splitlines() if line.startswith("{")]
    assert refused["stage"] == "decode" and "not a re-routed record" in refused["error"]


@pytest.mark.parametrize(
    "command",
    # `topics create` keeps trying for --wait seconds (a broker that is starting): 30 by default
    [("publish", "erp.submissions", "-"), ("topics", "create", "--wait", "2")],
    ids=lambda command: " ".join(command[:2]),
)
def test_cli_command_on_a_broker_it_cannot_reach_is_one_clear_error(
    worker_env: dict[str, str], command: tuple[str, ...]
) -> None:
    """One line saying which broker cannot be used: no traceback, and none of the client's
    per-attempt connection errors (`topics create` printed ~200 of them and a traceback)."""
    event = valid_examples()["ItemRetrieved"]
    env = {**worker_env, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    result = cli(env, *command, input_text=json.dumps(event))
    assert result.returncode == 1, result.stderr[-2000:]
    assert "the Kafka broker at 127.0.0.1:1 cannot be used" in result.stderr
    assert "Traceback" not in result.stderr and "Unclosed" not in result.stderr, result.stderr
    assert "Unable connect" not in result.stderr, result.stderr[-2000:]
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr[-2000:]


async def test_cli_publish_takes_a_file_that_starts_with_a_byte_order_mark_and_tail_keeps_lines(
    settings: Settings, worker_env: dict[str, str], tmp_path: Path
) -> None:
    """Windows editors write a BOM first; a title may hold line and paragraph separators,
    which line readers such as Python's `splitlines` split on."""
    mine = await isolated(settings, f"bom{uuid.uuid4().hex[:6]}")
    env = {**worker_env, "ERP_TOPIC_PREFIX": mine.erp_topic_prefix}
    event = valid_examples()["ItemSubmitted"]
    event["payload"]["title"] = "Steel\u2028frame\u2029deck"
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(event, indent=2, ensure_ascii=False).encode())
    published = cli(env, "publish", "erp.submissions", str(path))
    assert published.returncode == 0, published.stderr
    assert "published 1 event(s)" in published.stdout
    tailed = cli(env, "tail", "erp.submissions", "--no-follow")
    assert tailed.returncode == 0, tailed.stderr
    (line,) = tailed.stdout.splitlines()
    assert json.loads(line)["payload"]["title"] == event["payload"]["title"]


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


async def test_cli_tail_reports_a_tombstone_and_shows_the_events_after_it(
    settings: Settings, worker_env: dict[str, str]
) -> None:
    # topics of its own: every other test may read the shared ones expecting only events
    mine = await isolated(settings, f"tomb{uuid.uuid4().hex[:6]}")
    env = {**worker_env, "ERP_TOPIC_PREFIX": mine.erp_topic_prefix}
    producer = make_producer(mine)
    await producer.start()
    try:  # a record with no value, as any client may write one
        await producer.send_and_wait(mine.topic(SUBMISSIONS.name), None, key=b"acme:x:y")
    finally:
        await producer.stop()
    event = valid_examples()["ItemRetrieved"]
    published = cli(env, "publish", "erp.submissions", "-", input_text=json.dumps(event))
    assert published.returncode == 0, published.stderr
    tailed = cli(env, "tail", "erp.submissions", "--no-follow")
    assert tailed.returncode == 0, tailed.stderr
    assert event["event_id"] in [
        json.loads(line)["event_id"] for line in tailed.stdout.splitlines()
    ]
    refused = [json.loads(line) for line in tailed.stderr.splitlines() if line.startswith("{")]
    assert any(r["stage"] == "decode" and "tombstone" in r["error"] for r in refused)


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
        ledger_columns = {
            row[0]
            for row in conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_name = 'notifications_sent'"
            )
        }
    assert {"0001", "0003", "0004"} <= set(versions)
    assert {"items", "item_history", "notifications_sent"} <= tables
    assert {"deferrals", "first_deferred_at"} <= ledger_columns


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
