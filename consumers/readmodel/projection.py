"""Worker `projection`: every status change on erp.status into the PostgreSQL read model.

The projection is the batch handler of the consume loop (`consumers.worker.loop`): everything
one fetch returned is written in one transaction, and the loop commits the offsets after it.
When the database is unavailable the transaction rolls back, the connection is dropped, and
the outcome is RETRY: the loop hands the same batch over again a second later, and the next
try connects anew.
"""

from __future__ import annotations

import datetime as dt
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
from pipeline.metrics import Metrics
from pipeline.settings import Settings
from topics.events import ItemStatusChanged
from topics.payloads import ItemStatus
from topics.record import Record
from topics.specs import STATUS

log = logging.getLogger(__name__)

GROUP = "erp-projection"

#: Upsert of the current state; a status change that is not after what the row shows (by the
#: item's sequence; one without a sequence was written before it existed, so it comes before
#: every one with it, and among those the old rule holds: version, then time) changes nothing.
UPSERT_ITEM = """
INSERT INTO items AS i (company_id, item_type, item_id, status, submission_version, number,
    title, amount, project_id, project_name, sent_by_email, sent_by_name, sent_at,
    decided_by_email, decided_at, reason, erp_reference, last_error, updated_at, last_event_id,
    sequence)
VALUES (%(company_id)s, %(item_type)s, %(item_id)s, %(status)s, %(version)s, %(number)s,
    %(title)s, %(amount)s, %(project_id)s, %(project_name)s, %(sent_by_email)s,
    %(sent_by_name)s, %(sent_at)s, %(decided_by_email)s, %(decided_at)s, %(reason)s,
    %(erp_reference)s, %(last_error)s, %(occurred_at)s, %(event_id)s, %(sequence)s)
ON CONFLICT (company_id, item_type, item_id) DO UPDATE SET
    status = EXCLUDED.status, submission_version = EXCLUDED.submission_version,
    number = COALESCE(EXCLUDED.number, i.number), title = COALESCE(EXCLUDED.title, i.title),
    amount = COALESCE(EXCLUDED.amount, i.amount),
    project_id = COALESCE(EXCLUDED.project_id, i.project_id),
    project_name = COALESCE(EXCLUDED.project_name, i.project_name),
    sent_by_email = COALESCE(EXCLUDED.sent_by_email, i.sent_by_email),
    sent_by_name = COALESCE(EXCLUDED.sent_by_name, i.sent_by_name),
    sent_at = COALESCE(EXCLUDED.sent_at, i.sent_at),
    decided_by_email = COALESCE(EXCLUDED.decided_by_email, i.decided_by_email),
    decided_at = COALESCE(EXCLUDED.decided_at, i.decided_at),
    reason = EXCLUDED.reason, erp_reference = EXCLUDED.erp_reference,
    last_error = EXCLUDED.last_error, updated_at = EXCLUDED.updated_at,
    last_event_id = EXCLUDED.last_event_id, sequence = EXCLUDED.sequence
WHERE CASE
    WHEN EXCLUDED.sequence IS NOT NULL THEN i.sequence IS NULL OR i.sequence < EXCLUDED.sequence
    WHEN i.sequence IS NOT NULL THEN false
    ELSE (i.submission_version, i.updated_at) <= (EXCLUDED.submission_version, EXCLUDED.updated_at)
END
RETURNING decided_at
"""

INSERT_HISTORY = """
INSERT INTO item_history (event_id, company_id, item_type, item_id, status, previous_status,
    submission_version, actor_user_id, actor_email, actor_name, reason, reasons, erp_reference,
    occurred_at, correlation_id, source_topic, source_partition, source_offset, sequence)
VALUES (%(event_id)s, %(company_id)s, %(item_type)s, %(item_id)s, %(status)s,
    %(previous_status)s, %(version)s, %(actor_user_id)s, %(actor_email)s, %(actor_name)s,
    %(reason)s, %(reasons)s, %(erp_reference)s, %(occurred_at)s, %(correlation_id)s,
    %(topic)s, %(partition)s, %(offset)s, %(sequence)s)
ON CONFLICT (event_id) DO NOTHING
"""

DECIDED = {"exporting", "rejected"}


def row_of(event: ItemStatusChanged, record: Record) -> dict[str, Any]:
    """The SQL parameters of one status change."""
    p = event.payload
    status = p.status.value
    return {
        "company_id": event.company_id,
        "item_type": event.item.type.value,
        "item_id": event.item.id,
        "status": status,
        "version": p.submission_version,
        "previous_status": p.previous_status.value if p.previous_status else None,
        "number": p.item_number,
        "title": p.item_title,
        "amount": p.amount,
        "project_id": p.project.id if p.project else None,
        "project_name": p.project.name if p.project else None,
        "sent_by_email": p.sent_by.email if p.sent_by else None,
        "sent_by_name": p.sent_by.name if p.sent_by else None,
        "sent_at": p.sent_at,
        "decided_by_email": event.actor.email if status in DECIDED else None,
        "decided_at": event.occurred_at if status in DECIDED else None,
        "reason": p.reason,
        "reasons": json.dumps(p.reasons),
        "erp_reference": p.erp_reference,
        "last_error": p.reason if status == "failed_to_export" else None,
        "occurred_at": event.occurred_at,
        "sequence": p.sequence,
        "event_id": event.event_id,
        "actor_user_id": event.actor.user_id,
        "actor_email": event.actor.email,
        "actor_name": event.actor.name,
        "correlation_id": event.correlation_id,
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
    }


class Projection:
    """The handler of erp.status: writes a batch of status changes in one transaction."""

    def __init__(self, db: Reconnecting, metrics: Metrics) -> None:
        self._db, self._metrics = db, metrics

    def subscriber(self) -> Subscriber[ItemStatusChanged]:
        """How the consume loop runs it: all of a fetch at once, a second between tries."""
        return Subscriber(STATUS, GROUP, handle_batch=self.write, retry_base_s=1.0, retry_max_s=1.0)

    async def write(self, batch: Sequence[Consumed[ItemStatusChanged]]) -> Outcome:
        """Write the batch in one transaction; RETRY (reconnecting next time) if the DB is down."""
        try:
            decided = await self._db.write(lambda conn: write_batch(conn, batch))
        except Unavailable:  # rolled back, no offset moved: written again on the next try
            return Outcome.RETRY
        for consumed, decided_at in zip(batch, decided, strict=True):
            _observe_latencies(self._metrics, consumed.event, decided_at)
        return Outcome.PROCESSED

    async def close(self) -> None:
        """Close the database connection."""
        await self._db.close()


async def write_batch(
    conn: psycopg.AsyncConnection[Any], batch: Sequence[Consumed[ItemStatusChanged]]
) -> list[dt.datetime | None]:
    """Upsert each item and add its history row, in one transaction; each row's `decided_at`."""
    decided: list[dt.datetime | None] = []
    async with conn.transaction():
        for consumed in batch:
            row = row_of(consumed.event, consumed.record)
            cursor = await conn.execute(UPSERT_ITEM, row)
            before = await cursor.fetchone()
            await conn.execute(INSERT_HISTORY, row)
            decided.append(before[0] if before else None)
    return decided


def _observe_latencies(
    metrics: Metrics, event: ItemStatusChanged, decided_at: dt.datetime | None
) -> None:
    """Submission → decision and accept → synced, from the events' own times."""
    p = event.payload
    if p.status.value in DECIDED and p.previous_status == ItemStatus.READY_TO_EXPORT and p.sent_at:
        decision = "accepted" if p.status == ItemStatus.EXPORTING else "rejected"
        seconds = (event.occurred_at - p.sent_at).total_seconds()
        metrics.submission_to_decision.labels(decision).observe(max(0.0, seconds))
    elif p.status == ItemStatus.SYNCED and decided_at is not None:
        metrics.accept_to_synced.observe(max(0.0, (event.occurred_at - decided_at).total_seconds()))


#: Queue depth per status, type and company, and the oldest item waiting, for the gauges.
COUNT_ITEMS = "SELECT status, item_type, company_id, count(*) FROM items GROUP BY 1, 2, 3"
OLDEST_READY = """
SELECT company_id, extract(epoch FROM now() - min(coalesce(sent_at, updated_at)))
FROM items WHERE status = 'ready_to_export' GROUP BY 1
"""


async def sample_queues(database_url: str, metrics: Metrics) -> None:
    """Set the queue-depth and oldest-waiting gauges from the read model."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        counts = await (await conn.execute(COUNT_ITEMS)).fetchall()
        oldest = await (await conn.execute(OLDEST_READY)).fetchall()
    metrics.items.clear()
    for status, item_type, company, count in counts:
        metrics.items.labels(status, item_type, company).set(count)
    metrics.oldest_ready_age.clear()
    for company, age in oldest:
        metrics.oldest_ready_age.labels(company).set(float(age))


async def serve(runtime: Runtime) -> None:
    """Consume erp.status until stopped, committing offsets after each transaction."""
    settings, metrics = runtime.settings, runtime.metrics
    database_url = settings.require_database_url()
    runtime.watch_database(database_url)
    runtime.samplers.append(lambda: sample_queues(database_url, metrics))
    producer = make_producer(settings)
    projection = Projection(await Reconnecting.connect(database_url), metrics)
    await consume(runtime, projection.subscriber(), producer, close=[projection.close])


def run(settings: Settings) -> None:
    """Worker entry point (`erp-pipeline run projection`): runs until SIGTERM / SIGINT."""
    run_worker(settings, serve)
