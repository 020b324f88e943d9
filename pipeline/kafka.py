"""aiokafka clients built from settings, topic creation, and the shared publish helper."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from pipeline import header_names
from pipeline.metrics import Metrics
from pipeline.settings import Settings
from topics import ALL_TOPICS, Envelope, TopicSpec, encode, headers_for, key_of
from topics.specs import INTERNAL_TOPICS

log = logging.getLogger(__name__)

# Every consumer of ours reads through aiokafka's fetcher, faust's included: a record whose
# header name is not UTF-8 must not stop its partition (see `pipeline.header_names`).
header_names.install()

TOPIC_ALREADY_EXISTS = 36
TOPIC_AUTHORIZATION_FAILED = 29

T = TypeVar("T")


class KafkaUnavailable(RuntimeError):
    """The broker could not be reached or refused the request."""


def make_producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    """A producer for at-least-once delivery: acks from all replicas, no idempotence.

    Idempotence is off because the embedded broker cannot grant producer ids; duplicates
    that a retry may cause are removed downstream by `event_id`. With
    `KAFKA_SINGLE_RECORD_BATCHES` every record goes in a batch of its own (see Settings).
    """
    options: dict[str, Any] = {
        "acks": "all",
        "enable_idempotence": False,
        "linger_ms": 5,
        "max_request_size": 4 * 1024 * 1024,
        **settings.kafka_client_kwargs(),
    }
    if settings.kafka_single_record_batches:
        options["max_batch_size"] = 1  # the first record always fits: one record per batch
    options.update(overrides)
    return AIOKafkaProducer(**options)


def make_consumer(
    settings: Settings, *topics: str, group_id: str | None, **overrides: Any
) -> AIOKafkaConsumer:
    """A consumer with manual commits (offsets are committed after the side effect)."""
    options: dict[str, Any] = {
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": settings.kafka_session_timeout_ms,
        "heartbeat_interval_ms": settings.kafka_heartbeat_interval_ms,
        "fetch_max_wait_ms": settings.kafka_fetch_max_wait_ms,
        "fetch_max_bytes": 8 * 1024 * 1024,
        "max_partition_fetch_bytes": 4 * 1024 * 1024,
        **settings.kafka_client_kwargs(),
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)


async def create_topics(
    settings: Settings,
    specs: Iterable[TopicSpec] = (*ALL_TOPICS, *INTERNAL_TOPICS),
    *,
    timeout_s: float = 30.0,
    unauthorized_ok: bool = False,
) -> dict[str, str]:
    """Create every topic from its spec (by default the contract's and the pipeline's internal
    ones); existing topics are left as they are.

    Returns topic name → "created" | "exists" | "not authorized". Retries until the broker
    answers or the deadline passes (a broker that has just started may not accept requests
    yet). Raises KafkaUnavailable for any other per-topic error, and for a topic the principal
    may not create unless `unauthorized_ok` (a worker whose ACLs let it create only its own
    topics, the set-up job having created the others: Kafka answers "not authorized" even for
    a topic that exists).
    """
    deadline = time.monotonic() + timeout_s
    new = [
        NewTopic(
            spec.full_name(settings.erp_topic_prefix),
            spec.partitions,
            settings.kafka_replication_factor,
            topic_configs=spec.configs(),
        )
        for spec in specs
    ]
    while True:
        admin = AIOKafkaAdminClient(**settings.kafka_client_kwargs())
        try:
            await admin.start()
            response = await admin.create_topics(new)
            break
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise KafkaUnavailable(f"could not create topics: {exc}") from exc
            await asyncio.sleep(0.2)
        finally:
            await admin.close()
    outcome: dict[str, str] = {}
    for name, code, message in response.topic_errors:
        if code == 0:
            outcome[name] = "created"
        elif code == TOPIC_ALREADY_EXISTS:
            outcome[name] = "exists"
        elif code == TOPIC_AUTHORIZATION_FAILED and unauthorized_ok:
            outcome[name] = "not authorized"
            log.info("%s: not created here (no Create permission); the set-up job creates it", name)
        else:
            raise KafkaUnavailable(f"could not create {name}: error {code} {message}")
    return outcome


async def publish(
    producer: AIOKafkaProducer,
    settings: Settings,
    spec: TopicSpec,
    event: Envelope,
    *,
    headers: Sequence[tuple[str, bytes]] = (),
    metrics: Metrics | None = None,
) -> None:
    """Send one event to its topic with the contract's key and headers, and wait for the ack.

    `headers` go after the contract's (the exporter adds Kafka Connect's dead-letter headers).
    With `metrics`, the acknowledged event is counted here, the one place every worker's
    output passes: `events_produced` by topic, and `events_refused` by stage for a dead letter.
    """
    await producer.send_and_wait(
        spec.full_name(settings.erp_topic_prefix),
        encode(event),
        key=key_of(event).encode("utf-8"),
        headers=[*headers_for(event), *headers],
    )
    if metrics is not None:
        metrics.published(spec.name, event)


async def patiently(
    call: Callable[[], Awaitable[T]],
    *,
    what: str,
    timeout_s: float,
    metrics: Metrics | None = None,
    attempts: int | None = None,
    backoff_s: float = 0.5,
    max_backoff_s: float = 10.0,
) -> T:
    """`await call()`, bounded: an attempt that does not answer within `timeout_s` seconds, or
    fails with a KafkaError, is abandoned and retried after a doubling backoff.

    Every retry logs a warning and counts in `erp_pipeline_broker_call_retries_total` with
    `call=what` (a fixed name, never data). `attempts` bounds the tries (None: until it
    answers); past it KafkaUnavailable is raised. For broker calls a worker cannot go on
    without, which would otherwise wait forever without a word when a broker never answers.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return await asyncio.wait_for(call(), timeout_s)
        except (TimeoutError, KafkaError) as exc:
            reason = "timeout" if isinstance(exc, TimeoutError) else "error"
            if metrics is not None:
                metrics.broker_call_retries.labels(what, reason).inc()
            why = f"no answer in {timeout_s:g}s" if reason == "timeout" else repr(exc)
            if attempts is not None and attempt >= attempts:
                raise KafkaUnavailable(f"{what}: {why}, {attempt} attempts") from exc
            delay = min(max_backoff_s, backoff_s * 2 ** (attempt - 1))
            log.warning("%s: %s (attempt %d); retrying in %gs", what, why, attempt, delay)
            await asyncio.sleep(delay)


async def stop_consumer(consumer: AIOKafkaConsumer) -> None:
    """Stop a consumer, first letting its background tasks take their first step.

    aiokafka's group-less coordinator awaits its own cancelled task in `stop()`; a task that
    is cancelled before it ever ran re-raises CancelledError there instead of ending quietly.
    """
    await asyncio.sleep(0)
    await consumer.stop()


async def partitions_of(consumer: AIOKafkaConsumer, topic: str) -> list[Any]:
    """The topic's partitions as `TopicPartition`s, from fresh metadata ([] if no such topic)."""
    from aiokafka import TopicPartition

    await consumer.topics()  # refreshes metadata (and lets the consumer's tasks start)
    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]


async def caught_up(consumer: AIOKafkaConsumer, ends: dict[Any, int]) -> bool:
    """True when the consumer's position has reached `ends` on every partition."""
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


async def read_all(settings: Settings, spec: TopicSpec) -> list[Any]:
    """Every record currently in a topic (from the beginning to the end offsets of now)."""
    from aiokafka import TopicPartition

    name = spec.full_name(settings.erp_topic_prefix)
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(name, p) for p in sorted(consumer.partitions_for_topic(name) or [])
        ]
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        while not await caught_up(consumer, ends):
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
        # Some brokers (the embedded one) under-report end offsets after concurrent writes:
        # records past the reported end are still there, so drain until a poll comes back empty.
        while batches := await consumer.getmany(timeout_ms=300):
            for batch in batches.values():
                records.extend(batch)
        return records
    finally:
        await stop_consumer(consumer)
