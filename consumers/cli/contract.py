"""CLI commands over the contract: `publish`, `tail`, `schemas`, `topics`."""

from __future__ import annotations

import json
import sys
from typing import IO, Any

import click

from consumers.cli.common import load_settings, run_async
from pipeline.kafka import (
    caught_up,
    create_topics,
    make_consumer,
    make_producer,
    partitions_of,
    publish,
    stop_consumer,
)
from pipeline.processor import routing
from pipeline.settings import Settings
from topics import ALL_TOPICS, ContractError, DecodeError, TopicSpec, decode, spec_for
from topics.jsonschema import SCHEMA_DIR, stale_files, write_all
from topics.record import Record, decode_record
from topics.specs import INTERNAL_TOPICS, ITEM_ROUTES


def _spec(name: str) -> TopicSpec:
    try:
        return spec_for(name, load_settings().erp_topic_prefix)
    except KeyError as exc:
        raise click.BadParameter(str(exc.args[0]), param_hint="TOPIC") from None


_DECODER = json.JSONDecoder()


def _skip_space(text: str, at: int) -> int:
    """The index of the first character at or after `at` that is not JSON whitespace."""
    while at < len(text) and text[at] in " \t\n\r":
        at += 1
    return at


def _array_items(text: str) -> list[str] | None:
    """The text of each element of the JSON array `text`, as written; None if it is not one.

    Each element is checked from its own text, as a worker would read it: re-serializing a
    parsed element would quietly drop what the codec refuses (a key given twice).
    """
    items: list[str] = []
    at = _skip_space(text, 1)
    if text.startswith("]", at):
        return items if _skip_space(text, at + 1) == len(text) else None
    while True:
        try:
            _, end = _DECODER.raw_decode(text, at)
        except (ValueError, RecursionError):  # not JSON, too deep, or an integer too long
            return None
        items.append(text[at:end])
        at = _skip_space(text, end)
        if text.startswith(",", at):
            at = _skip_space(text, at + 1)
        elif text.startswith("]", at) and _skip_space(text, at + 1) == len(text):
            return items
        else:
            return None


def _read_documents(stream: IO[bytes]) -> list[str]:
    """One JSON object, a JSON array of objects, or JSON lines; each as its own text.

    Raises `click.ClickException` when the input is not UTF-8 or holds no event. A document
    the JSON parser cannot take whole (nested too deep, an integer too long) is returned as it
    is, for the codec to refuse with its reason.
    """
    try:
        # a byte-order mark some editors write first is the file's encoding, not an event's
        text = stream.read().removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise click.ClickException(
            f"invalid input, nothing was published: not UTF-8 ({exc.reason} at byte {exc.start})"
        ) from None
    stripped = text.strip()
    if not stripped:
        raise click.ClickException("no event in the input")
    if stripped.startswith("["):
        items = _array_items(stripped)
        if items is not None:
            return items
    try:
        json.loads(stripped)
    except json.JSONDecodeError:
        return [line for line in text.splitlines() if line.strip()]
    except (ValueError, RecursionError):
        pass  # one document the codec refuses with its reason (too deep, an integer too long)
    return [stripped]


@click.command("publish")
@click.argument("topic")
@click.argument("source", type=click.File("rb"), default="-")
def publish_cmd(topic: str, source: IO[bytes]) -> None:
    """Validate JSON events against the contract and publish them to TOPIC.

    SOURCE is a file (or - for stdin) holding one event, a JSON array or JSON lines. Every
    event is checked first; if any is invalid nothing is sent and the command exits 1.
    """
    spec = _spec(topic)
    if spec in INTERNAL_TOPICS:
        raise click.BadParameter(
            f"{spec.name} is the pipeline's own (records re-routed by the processor)",
            param_hint="TOPIC",
        )
    documents = _read_documents(source)
    events, errors = [], []
    for number, document in enumerate(documents, start=1):
        try:
            events.append(decode(document, spec))
        except ContractError as exc:
            errors.append(f"event {number}: {exc.reason}")
    if errors:
        raise click.ClickException(
            "invalid input, nothing was published:\n  " + "\n  ".join(errors)
        )
    settings = load_settings()
    run_async(_publish_all(settings, spec, events))
    click.echo(f"published {len(events)} event(s) to {spec.full_name(settings.erp_topic_prefix)}")


async def _publish_all(settings: Settings, spec: TopicSpec, events: list[Any]) -> None:
    producer = make_producer(settings)
    try:
        await producer.start()
        for event in events:
            await publish(producer, settings, spec, event)
    finally:
        await producer.stop()


#: Line breaks JSON may leave raw inside strings but line readers split on (Python's
#: `splitlines`, JavaScript's line terminators): written as escapes, so one event is one line.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def one_line(text: str) -> str:
    """JSON text with the line breaks it may hold raw inside strings escaped (still the same
    JSON value)."""
    return text.translate(_LINE_BREAKS)


@click.command("tail")
@click.argument("topic")
@click.option("--from-beginning/--from-end", default=True, show_default=True)
@click.option("--follow/--no-follow", default=False, help="Keep waiting for new events.")
@click.option("--max", "max_events", type=int, default=None, help="Stop after N events.")
def tail_cmd(topic: str, from_beginning: bool, follow: bool, max_events: int | None) -> None:
    """Print TOPIC's events as JSON lines (undecodable records are reported on stderr)."""
    spec = _spec(topic)
    run_async(_tail(load_settings(), spec, from_beginning, follow, max_events))


def _decoded(settings: Settings, record: Any, spec: TopicSpec) -> Any:
    """The event a consumed record holds; a copy on the internal erp.item-routes holds the
    event of the record it stands for (its origin headers name that record's topic).

    Raises ContractError as `decode_record` does, and DecodeError for a copy without valid
    origin headers.
    """
    read = Record.of(record)
    if spec is ITEM_ROUTES:
        try:
            read = routing.origin_of(read, record.headers)
            spec = spec_for(read.topic, settings.erp_topic_prefix)
        except (ValueError, KeyError) as exc:
            raise DecodeError(f"not a re-routed record of an item topic: {exc}") from None
    return decode_record(read, spec)


async def _tail(
    settings: Settings, spec: TopicSpec, from_beginning: bool, follow: bool, max_events: int | None
) -> None:
    name = spec.full_name(settings.erp_topic_prefix)
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        partitions = await partitions_of(consumer, name)
        if not partitions:
            raise click.ClickException(f"topic {name} does not exist")
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        if from_beginning:
            await consumer.seek_to_beginning(*partitions)
        else:
            await consumer.seek_to_end(*partitions)
        shown = 0
        while max_events is None or shown < max_events:
            batch = await consumer.getmany(timeout_ms=500)
            # Without --follow, stop once past the end offsets and a poll comes back empty
            # (the embedded broker can under-report end offsets after concurrent writes).
            if not batch and not follow and await caught_up(consumer, ends):
                return
            for records in batch.values():
                for record in records:
                    try:
                        event = _decoded(settings, record, spec)
                        click.echo(one_line(event.model_dump_json(exclude_none=True)))
                    except ContractError as exc:
                        click.echo(
                            json.dumps(
                                {
                                    "partition": record.partition,
                                    "offset": record.offset,
                                    "stage": exc.stage,
                                    "error": exc.reason,
                                }
                            ),
                            err=True,
                        )
                    shown += 1
                    if max_events is not None and shown >= max_events:
                        return
    finally:
        await stop_consumer(consumer)


@click.command("schemas")
@click.option("--check", is_flag=True, help="Exit 1 if the files under topics/schemas are stale.")
def schemas_cmd(check: bool) -> None:
    """Write one JSON Schema per event type to topics/schemas/ (or check they are current)."""
    if check:
        stale = stale_files()
        if stale:
            click.echo(f"stale schemas: {', '.join(stale)}; run `erp-pipeline schemas`", err=True)
            sys.exit(1)
        click.echo(f"schemas in {SCHEMA_DIR} are current")
        return
    written = write_all()
    click.echo(f"wrote {len(written)} schemas to {SCHEMA_DIR}")


@click.group("topics")
def topics_group() -> None:
    """Manage the pipeline's Kafka topics."""


@topics_group.command("create")
@click.option(
    "--wait",
    "wait_s",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0, max=3600),
    help="Seconds to keep trying while the broker does not answer (one that is starting).",
)
def topics_create_cmd(wait_s: float) -> None:
    """Create every topic of the contract (with ERP_TOPIC_PREFIX) from its spec; idempotent.

    Retries for `--wait` seconds while the broker cannot be reached, then exits 1 with one
    line naming it.
    """
    settings = load_settings()
    outcome = run_async(create_topics(settings, timeout_s=wait_s))
    for name, result in outcome.items():
        click.echo(f"{name}: {result}")


@topics_group.command("list")
def topics_list_cmd() -> None:
    """Show the topic specs: name, partitions, cleanup policy, retention, event types."""
    settings = load_settings()
    for spec in (*ALL_TOPICS, *INTERNAL_TOPICS):
        retention = "forever" if spec.retention_ms < 0 else f"{spec.retention_ms // 86_400_000}d"
        click.echo(
            f"{spec.full_name(settings.erp_topic_prefix):28} partitions={spec.partitions} "
            f"cleanup={spec.cleanup_policy:13} retention={retention:8} "
            f"events={','.join(spec.event_types) or spec.written_by}"
        )
