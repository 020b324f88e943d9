"""The reference ERP adapter: ERP records and ledger row in one PostgreSQL transaction."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.pq import TransactionStatus

from consumers.export.port import ErpError, ExportOutcome
from consumers.export.spectrum.errors import describe
from consumers.export.spectrum.mapping import ErpDocument, to_document
from consumers.export.spectrum.writes import write_document
from topics.events import ExportRequested
from topics.limits import MESSAGE_CHARS, truncate
from topics.payloads import KafkaSource

log = logging.getLogger(__name__)

_SELECT = (
    "SELECT export_id, attempt, outcome, recorded_at, erp_reference, error_code, error_message"
    " FROM exporter.export_ledger WHERE export_id = %s"
)
_RECORD = (
    "INSERT INTO exporter.export_ledger AS l (export_id, company_id, item_type, item_id, attempt,"
    " outcome, erp_reference, error_code, error_message, source_topic, source_partition,"
    " source_offset) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (export_id) DO UPDATE SET attempt = EXCLUDED.attempt,"
    " outcome = EXCLUDED.outcome, erp_reference = EXCLUDED.erp_reference,"
    " error_code = EXCLUDED.error_code, error_message = EXCLUDED.error_message,"
    " source_topic = EXCLUDED.source_topic, source_partition = EXCLUDED.source_partition,"
    " source_offset = EXCLUDED.source_offset, recorded_at = now()"
    " WHERE l.outcome <> 'exported'"
    " RETURNING export_id, attempt, outcome, recorded_at, erp_reference, error_code,"
    " error_message"
)


#: Transaction-level advisory locks on every export id of a batch (a text array), in order.
_LOCK_ALL = (
    "SELECT pg_advisory_xact_lock(hashtextextended(id, 0))"
    " FROM (SELECT unnest(%s::text[]) AS id ORDER BY 1) AS ids"
)
_SELECT_ALL = (
    "SELECT export_id, attempt, outcome, recorded_at, erp_reference, error_code, error_message"
    " FROM exporter.export_ledger WHERE export_id = ANY(%s)"
)


#: The ERP reference of items the ledger shows exported, under any export id: (company,
#: item type, item id) arrays in, one row per item exported.
_EXPORTED_ITEMS = (
    "SELECT DISTINCT ON (company_id, item_type, item_id) company_id, item_type, item_id,"
    " erp_reference FROM exporter.export_ledger"
    " WHERE outcome = 'exported' AND (company_id, item_type, item_id) IN"
    " (SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]))"
    " ORDER BY company_id, item_type, item_id, recorded_at"
)

Item = tuple[str, str, str]


def _item(request: ExportRequested) -> Item:
    return (request.company_id, request.item.type.value, request.item.id)


async def _exported_items(conn: AsyncConnection[Any], items: Sequence[Item]) -> dict[Item, str]:
    """The ledger's ERP reference of each of `items` exported before (by any export id)."""
    columns = [list(c) for c in zip(*items, strict=True)] if items else [[], [], []]
    rows = await (await conn.execute(_EXPORTED_ITEMS, columns)).fetchall()
    return {(r[0], r[1], r[2]): r[3] for r in rows}


class _Isolate(Exception):
    """An export failed in a batch written without savepoints: write it again with them."""


def classify(exc: BaseException, document: ErpDocument | None = None) -> ErpError:
    """A driver error in the catalogue's words (`consumers.export.spectrum.errors.describe`):
    a refused write is permanent, anything about reaching the ERP is not."""
    return describe(exc, document)


def _outcome(row: tuple[Any, ...]) -> ExportOutcome:
    return ExportOutcome(
        export_id=row[0],
        attempt=row[1],
        exported=row[2] == "exported",
        recorded_at=row[3],
        erp_reference=row[4],
        error_code=row[5],
        error_message=row[6],
    )


class SpectrumErp:
    """`ErpPort` over the reference ERP in PostgreSQL, with a small pool of its own connections.

    A connection that failed mid-transaction is dropped, never reused; a new one is opened on
    demand, so an outage costs failed attempts and nothing else.
    """

    def __init__(
        self, database_url: str, *, max_connections: int = 8, connect_timeout_s: int = 5
    ) -> None:
        self._url = database_url
        self._connect_timeout_s = connect_timeout_s
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[AsyncConnection[Any]] = []

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        async with self._slots:
            conn = (
                self._idle.pop()
                if self._idle
                else await AsyncConnection.connect(
                    self._url, autocommit=True, connect_timeout=self._connect_timeout_s
                )
            )
            try:
                yield conn
            finally:
                if conn.closed or conn.info.transaction_status != TransactionStatus.IDLE:
                    with contextlib.suppress(Exception):
                        await conn.close()
                else:
                    self._idle.append(conn)

    async def export(self, request: ExportRequested, source: KafkaSource) -> ExportOutcome:
        """Write the item and its ledger row in one transaction (see `ErpPort.export`)."""
        document = to_document(request)
        try:
            async with self._connection() as conn, conn.transaction():
                return await self._export_in(conn, request, source, document)
        except ErpError:
            raise
        except (psycopg.Error, OSError) as exc:
            error = classify(exc, document)
            log.info(
                "export %s: %s (the ERP said: %s)",
                request.payload.export_id,
                error.code,
                error.response,
            )
            raise error from exc

    async def export_batch(
        self, requests: Sequence[tuple[ExportRequested, KafkaSource]]
    ) -> list[ExportOutcome | ErpError | None]:
        """Every request in one transaction (see `ErpPort.export_batch`).

        First without a savepoint per export (two round trips fewer each); when an export
        fails there, the transaction is rolled back and done again with a savepoint each, so
        that only the failing export's writes are undone.
        """
        try:
            async with self._connection() as conn:
                try:
                    async with conn.transaction():
                        return await self._batch(conn, requests, savepoints=False)
                except _Isolate:
                    pass  # rolled back: nothing of the batch was written
                async with conn.transaction():
                    return await self._batch(conn, requests, savepoints=True)
        except (psycopg.Error, OSError) as exc:
            raise classify(exc) from exc

    async def _batch(
        self,
        conn: AsyncConnection[Any],
        requests: Sequence[tuple[ExportRequested, KafkaSource]],
        *,
        savepoints: bool,
    ) -> list[ExportOutcome | ErpError | None]:
        """The batch inside the caller's transaction; `_Isolate` when an export failed
        without `savepoints` (the caller rolls back)."""
        ids = sorted({request.payload.export_id for request, _ in requests})
        # Every export id of the batch locked at once, in one order (so two batches never
        # deadlock): a redelivery racing a slow first try queues here and then sees its
        # ledger row instead of a duplicate key.
        await conn.execute(_LOCK_ALL, (ids,))
        priors = {
            row[0]: _outcome(row)
            for row in await (await conn.execute(_SELECT_ALL, (ids,))).fetchall()
        }
        # An item re-sent (a new export id) after an export the ledger shows done: the ERP
        # has it already, so that export's reference is the answer, nothing written twice.
        exported = await _exported_items(conn, sorted({_item(r) for r, _ in requests}))
        results: list[ExportOutcome | ErpError | None] = []
        stopped: set[str] = set()  # items with an export not done: the rest of them waits
        for request, source in requests:
            if request.item_key in stopped:
                results.append(None)
                continue
            export_id = request.payload.export_id
            prior = priors.get(export_id)
            if prior is not None and (prior.exported or prior.attempt >= request.payload.attempt):
                results.append(prior)
                continue
            if (reference := exported.get(_item(request))) is not None:
                outcome = await self._record(conn, request, source, reference=reference)
                priors[export_id] = outcome
                results.append(outcome)
                continue
            try:
                document = to_document(request)  # pure: nothing written yet
            except ErpError as exc:
                results.append(exc)
                stopped.add(request.item_key)
                continue
            if not savepoints:
                try:
                    outcome = await self._write(conn, request, source, document)
                except (ErpError, psycopg.Error, OSError) as exc:
                    if conn.broken or conn.closed:
                        raise
                    raise _Isolate from exc
            else:
                try:
                    async with conn.transaction():  # a savepoint: this export, or nothing
                        outcome = await self._write(conn, request, source, document)
                except ErpError as exc:
                    results.append(exc)
                    stopped.add(request.item_key)
                    continue
                except (psycopg.Error, OSError) as exc:
                    if conn.broken or conn.closed:
                        raise  # the transaction is gone, and every export with it
                    results.append(classify(exc, document))
                    stopped.add(request.item_key)
                    continue
            priors[export_id] = outcome  # a second copy in the batch finds it
            results.append(outcome)
        return results

    async def _write(
        self,
        conn: AsyncConnection[Any],
        request: ExportRequested,
        source: KafkaSource,
        document: ErpDocument,
    ) -> ExportOutcome:
        """The ERP rows and the ledger row of one export, in the caller's transaction."""
        reference = await write_document(conn, document)
        return await self._record(conn, request, source, reference=reference)

    async def _export_in(
        self,
        conn: AsyncConnection[Any],
        request: ExportRequested,
        source: KafkaSource,
        document: ErpDocument,
    ) -> ExportOutcome:
        """Export one request inside the caller's transaction: its ERP rows and ledger row."""
        export_id = request.payload.export_id
        # Two deliveries of one export_id (a redelivery racing a slow first try) queue here, so
        # the second sees the first's ledger row instead of a duplicate key.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (export_id,))
        row = await (await conn.execute(_SELECT, (export_id,))).fetchone()
        if row is not None:
            prior = _outcome(row)
            if prior.exported or prior.attempt >= request.payload.attempt:
                return prior
        # re-sent after an export the ledger shows done: that export's reference, no write
        if reference := (await _exported_items(conn, [_item(request)])).get(_item(request)):
            return await self._record(conn, request, source, reference=reference)
        return await self._write(conn, request, source, document)

    async def record_failure(
        self, request: ExportRequested, source: KafkaSource, error: ErpError
    ) -> ExportOutcome:
        """Record a final failure unless the export already succeeded; returns the ledger row."""
        try:
            async with self._connection() as conn, conn.transaction():
                return await self._record(conn, request, source, error=error)
        except (psycopg.Error, OSError) as exc:
            raise classify(exc) from exc

    async def _record(
        self,
        conn: AsyncConnection[Any],
        request: ExportRequested,
        source: KafkaSource,
        *,
        reference: str | None = None,
        error: ErpError | None = None,
    ) -> ExportOutcome:
        p = request.payload
        row = await (
            await conn.execute(
                _RECORD,
                (
                    p.export_id,
                    request.company_id,
                    request.item.type.value,
                    request.item.id,
                    p.attempt,
                    "exported" if reference is not None else "failed",
                    reference,
                    error.code if error else None,
                    truncate(error.message, MESSAGE_CHARS) if error else None,
                    source.topic,
                    source.partition,
                    source.offset,
                ),
            )
        ).fetchone()
        if row is None:  # already exported: the success stands
            row = await (await conn.execute(_SELECT, (p.export_id,))).fetchone()
        assert row is not None
        return _outcome(row)

    async def close(self) -> None:
        """Close the idle connections."""
        idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):
                await conn.close()
