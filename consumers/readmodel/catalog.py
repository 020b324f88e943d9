"""Worker `catalog`: submissions, decisions and refusals of items into the read model.

The console shows an item's submitted snapshot, the accept fields of each decision and every
refused attempt; erp.status carries none of them. Each topic has its own subscriber (and
consumer group); a batch is written in one transaction and the loop commits after it, as the
projection does. Every row is keyed by its event's id, so redeliveries change nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any

import psycopg

from consumers.worker.db import Reconnecting, Unavailable
from consumers.worker.loop import consume
from consumers.worker.runtime import Runtime, run_worker
from consumers.worker.subscriber import Consumed, Outcome, Subscriber
from pipeline.kafka import make_producer
from pipeline.rules.derive import derived_id
from pipeline.settings import Settings
from topics import TopicSpec
from topics.events import EventRefused, ItemEvent
from topics.specs import DEAD_LETTERS, DECISIONS, SUBMISSIONS

log = logging.getLogger(__name__)

GROUP = "erp-catalog"

INSERT_EVENT = """
INSERT INTO {table} (event_id, status_event_id, company_id, item_type, item_id, event_type,
    payload, actor_email, actor_name, occurred_at, source_partition, source_offset)
VALUES (%(event_id)s, %(status_event_id)s, %(company_id)s, %(item_type)s, %(item_id)s,
    %(event_type)s, %(payload)s, %(actor_email)s, %(actor_name)s, %(occurred_at)s,
    %(partition)s, %(offset)s)
ON CONFLICT (event_id) DO NOTHING
"""
INSERT_REFUSAL = """
INSERT INTO item_refusals (event_id, company_id, item_type, item_id, refused_event_id,
    refused_event_type, stage, error, actor_email, actor_name, occurred_at, source_topic)
VALUES (%(event_id)s, %(company_id)s, %(item_type)s, %(item_id)s, %(refused_event_id)s,
    %(refused_event_type)s, %(stage)s, %(error)s, %(actor_email)s, %(actor_name)s,
    %(occurred_at)s, %(source_topic)s)
ON CONFLICT (event_id) DO NOTHING
"""
#: The item topics whose refusals an approver may want to see (not the pipeline's own).
REFUSED_FROM = ("erp.submissions", "erp.decisions")


def item_row(consumed: Consumed[Any]) -> dict[str, Any] | None:
    """The SQL parameters of a submission or decision (None for anything else)."""
    event = consumed.event
    if not isinstance(event, ItemEvent):
        return None
    return {
        "event_id": event.event_id,
        "status_event_id": derived_id(event, "status"),
        "company_id": event.company_id,
        "item_type": event.item.type.value,
        "item_id": event.item.id,
        "event_type": event.event_type,
        "payload": json.dumps(event.model_dump(mode="json")["payload"]),
        "actor_email": event.actor.email,
        "actor_name": event.actor.name,
        "occurred_at": event.occurred_at,
        "partition": consumed.record.partition,
        "offset": consumed.record.offset,
    }


def refusal_row(event: Any, prefix: str) -> dict[str, Any] | None:
    """The SQL parameters of a refusal of an item's submission or decision (else None)."""
    if not isinstance(event, EventRefused) or event.item is None:
        return None
    p = event.payload
    topic = p.source.topic.removeprefix(prefix)
    if topic not in REFUSED_FROM:
        return None
    return {
        "event_id": event.event_id,
        "company_id": event.company_id,
        "item_type": event.item.type.value,
        "item_id": event.item.id,
        "refused_event_id": p.refused_event_id,
        "refused_event_type": p.refused_event_type,
        "stage": p.stage.value,
        "error": p.error,
        "actor_email": event.actor.email,
        "actor_name": event.actor.name,
        "occurred_at": event.occurred_at,
        "source_topic": topic,
    }


#: Each topic the catalog reads → the name of its consumer group's suffix.
TOPICS: dict[str, TopicSpec] = {
    "submissions": SUBMISSIONS,
    "decisions": DECISIONS,
    "refusals": DEAD_LETTERS,
}


class Catalog:
    """The batch handler of one topic: one transaction per batch, RETRY (reconnecting next
    time) when the database is down."""

    def __init__(self, settings: Settings, db: Reconnecting, name: str) -> None:
        self._settings, self._db, self._name = settings, db, name

    def subscriber(self) -> Subscriber[Any]:
        """How the consume loop runs it: all of a fetch at once, a second between tries."""
        return Subscriber(
            TOPICS[self._name],
            f"{GROUP}-{self._name}",
            handle_batch=self.write,
            retry_base_s=1.0,
            retry_max_s=1.0,
        )

    async def write(self, batch: Sequence[Consumed[Any]]) -> Outcome:
        """Write the batch's rows in one transaction."""

        async def rows(conn: psycopg.AsyncConnection[Any]) -> None:
            async with conn.transaction():
                for consumed in batch:
                    await self._write_one(conn, consumed)

        try:
            await self._db.write(rows)
        except Unavailable:
            return Outcome.RETRY
        return Outcome.PROCESSED

    async def _write_one(self, conn: psycopg.AsyncConnection[Any], consumed: Consumed[Any]) -> None:
        if self._name == "refusals":
            refused = refusal_row(consumed.event, self._settings.erp_topic_prefix)
            if refused is not None:
                await conn.execute(INSERT_REFUSAL.encode(), refused)
            return
        row = item_row(consumed)
        if row is not None:
            table = "item_decisions" if self._name == "decisions" else "item_submissions"
            await conn.execute(INSERT_EVENT.replace("{table}", table).encode(), row)

    async def close(self) -> None:
        """Close the database connection."""
        await self._db.close()


async def serve(runtime: Runtime) -> None:
    """Consume the three topics until stopped, committing offsets after each transaction."""
    settings = runtime.settings
    database_url = settings.require_database_url()
    runtime.watch_database(database_url)
    catalogs = [
        Catalog(settings, await Reconnecting.connect(database_url), name) for name in TOPICS
    ]
    await asyncio.gather(
        *(
            consume(runtime, catalog.subscriber(), make_producer(settings), close=[catalog.close])
            for catalog in catalogs
        )
    )


def run(settings: Settings) -> None:
    """Worker entry point (`erp-pipeline run catalog`): runs until SIGTERM / SIGINT."""
    run_worker(settings, serve)
