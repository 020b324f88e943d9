"""The notifier's sent-ledger in PostgreSQL: which notification e-mails were sent, by event."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from typing import Literal

import psycopg

Outcome = Literal["sent", "failed"]


class LedgerUnavailable(RuntimeError):
    """PostgreSQL could not be reached or refused the statement; try again later."""


@dataclass(frozen=True)
class Claim:
    """A notification about to be sent: `attempts` > 1 means an earlier try may have sent it."""

    event_id: uuid.UUID
    attempts: int


class SentLedger:
    """One row per notification event: `sending` before SMTP, `sent` / `failed` after.

    The connection is opened lazily and dropped on any error, so the next call reconnects.
    """

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None

    async def _execute(self, query: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
        try:
            if self._conn is None or self._conn.closed:
                self._conn = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
            cursor = await self._conn.execute(query.encode(), params)
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
            " RETURNING attempts",
            (event_id, event_type, company_id, recipient, message_id, topic, partition, offset),
        )
        return Claim(event_id, int(str(rows[0][0]))) if rows else None

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
