"""The notifier's sent-ledger in PostgreSQL: which notification e-mails were sent, by event."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from typing import Literal

import psycopg

Outcome = Literal["sent", "failed"]


class LedgerUnavailable(RuntimeError):
    """PostgreSQL could not be reached or refused the statement; try again later."""


@dataclass(frozen=True)
class Deferrals:
    """How often the mail server deferred a notification, for how long, and its last answer.

    `for_s` is the time since the first deferral (0 before any), by the database's clock.
    """

    count: int = 0
    for_s: float = 0.0
    last: str | None = None

    def exhausted(self, max_attempts: int, max_s: float) -> bool:
        """Whether no try is left: `max_attempts` tries deferred, or deferred for `max_s`."""
        return self.count >= max_attempts or (self.count > 0 and self.for_s >= max_s)


@dataclass(frozen=True)
class Claim:
    """A notification about to be sent: `attempts` > 1 means an earlier try may have sent it.

    `deferrals` are the earlier tries the server deferred, counted across restarts.
    """

    event_id: uuid.UUID
    attempts: int
    deferrals: Deferrals = Deferrals()


def _deferrals(count: object, for_s: object, last: object) -> Deferrals:
    return Deferrals(
        int(str(count)),
        float(str(for_s)) if for_s is not None else 0.0,
        str(last) if last is not None else None,
    )


class SentLedger:
    """One row per notification event: `sending` before SMTP, `sent` / `failed` after.

    While `sending`, the row also counts the tries the server deferred (`deferrals`, since
    `first_deferred_at`, the last answer in `error`).

    The connection is opened lazily and dropped on any error, so the next call reconnects.
    """

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        # The notifier works on several partitions at once: they share the one connection
        # (psycopg runs its statements one at a time), and only one of them may open it.
        self._connecting = asyncio.Lock()

    async def _connection(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        async with self._connecting:
            if self._conn is None or self._conn.closed:
                self._conn = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
            return self._conn

    async def _execute(self, query: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
        try:
            cursor = await (await self._connection()).execute(query.encode(), params)
            return await cursor.fetchall() if cursor.description else []
        except psycopg.Error as exc:
            await self.close()
            raise LedgerUnavailable(f"sent-ledger: {type(exc).__name__}: {exc}") from exc

    async def claim(
        self,
        *,
        event_id: uuid.UUID,
        event_type: str,
        company_id: str,
        recipient: str,
        message_id: str,
        topic: str,
        partition: int,
        offset: int,
    ) -> Claim | None:
        """Record "sending"; None when the notification was already sent or failed for good."""
        rows = await self._execute(
            "INSERT INTO notifications_sent (event_id, event_type, company_id, recipient,"
            " message_id, status, source_topic, source_partition, source_offset)"
            " VALUES (%s, %s, %s, %s, %s, 'sending', %s, %s, %s)"
            " ON CONFLICT (event_id) DO UPDATE"
            " SET attempts = notifications_sent.attempts + 1, updated_at = now()"
            " WHERE notifications_sent.status = 'sending'"
            " RETURNING attempts, deferrals,"
            " EXTRACT(EPOCH FROM now() - first_deferred_at), error",
            (event_id, event_type, company_id, recipient, message_id, topic, partition, offset),
        )
        if not rows:
            return None
        attempts, count, for_s, last = rows[0]
        return Claim(event_id, int(str(attempts)), _deferrals(count, for_s, last))

    async def defer(self, event_id: uuid.UUID, answer: str) -> Deferrals | None:
        """Count one deferred try (`answer`: the server's reply) and return the count so far;
        None when the notification is no longer `sending` (another instance recorded it)."""
        rows = await self._execute(
            "UPDATE notifications_sent SET deferrals = deferrals + 1,"
            " first_deferred_at = COALESCE(first_deferred_at, now()),"
            " error = %s, updated_at = now()"
            " WHERE event_id = %s AND status = 'sending'"
            " RETURNING deferrals, EXTRACT(EPOCH FROM now() - first_deferred_at), error",
            (answer, event_id),
        )
        return _deferrals(*rows[0]) if rows else None

    async def finish(self, event_id: uuid.UUID, outcome: Outcome, error: str | None = None) -> None:
        """Record the outcome of the send."""
        await self._execute(
            "UPDATE notifications_sent SET status = %s, error = %s, updated_at = now(),"
            " sent_at = CASE WHEN %s = 'sent' THEN now() END WHERE event_id = %s",
            (outcome, error, outcome, event_id),
        )

    async def status(self, event_id: uuid.UUID) -> str | None:
        """The recorded status of a notification, if any."""
        rows = await self._execute(
            "SELECT status FROM notifications_sent WHERE event_id = %s", (event_id,)
        )
        return str(rows[0][0]) if rows else None

    async def close(self) -> None:
        """Close the connection (a later call opens a new one)."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            with contextlib.suppress(psycopg.Error):
                await conn.close()
