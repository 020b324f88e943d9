"""PostgreSQL access: versioned plain-SQL migrations, a reconnecting connection for batch
handlers, and database create/drop for tests."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from pipeline.settings import ConfigurationError

log = logging.getLogger(__name__)

#: Any two migration runners serialize on this advisory lock.
_MIGRATION_LOCK = 0x45525001


T = TypeVar("T")


class DatabaseError(RuntimeError):
    """A PostgreSQL operation failed; wraps the driver's error with what we were doing."""


class Unavailable(Exception):
    """The database could not be reached for this try (logged); the batch is to be retried."""


class Reconnecting:
    """One connection a batch handler writes through, opened anew after an outage.

    `write(work)` runs `work(conn)`, which opens its own transaction: when the database is
    unavailable (`psycopg.OperationalError`) the transaction rolled back and nothing was
    written, so `Unavailable` is raised for the handler to answer RETRY; the next `write`
    closes the broken connection and connects again. A write cut short by cancellation also
    leaves the connection unusable (mid-command), so it is replaced next time too.
    """

    def __init__(self, database_url: str, conn: psycopg.AsyncConnection[Any]) -> None:
        self._url, self._conn = database_url, conn
        self._broken = False

    @classmethod
    async def connect(cls, database_url: str) -> Reconnecting:
        """Open the first connection (raises `psycopg.OperationalError` if it cannot)."""
        return cls(database_url, await psycopg.AsyncConnection.connect(database_url))

    async def write(self, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
        """`work(conn)`'s result; raises `Unavailable` when the database could not be reached."""
        try:
            if self._broken:
                await self._conn.close()
                self._conn = await psycopg.AsyncConnection.connect(self._url)
                self._broken = False
            return await work(self._conn)
        except psycopg.OperationalError as exc:
            log.warning("database unavailable (%s); retrying the batch", exc)
            self._broken = True
            raise Unavailable(str(exc)) from exc
        except asyncio.CancelledError:
            self._broken = True
            raise

    async def close(self) -> None:
        """Close the connection."""
        await self._conn.close()


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str


def load_migrations(package: str = "consumers.worker.migrations") -> list[Migration]:
    """The migrations shipped in `package`, in version order (`NNNN_name.sql`)."""
    found = []
    for entry in resources.files(package).iterdir():
        if entry.name.endswith(".sql"):
            version, _, rest = entry.name.partition("_")
            found.append(Migration(version, rest.removesuffix(".sql"), entry.read_text("utf-8")))
    return sorted(found, key=lambda m: m.version)


def migrate(
    database_url: str,
    migrations: list[Migration] | None = None,
    *,
    table: str = "schema_migrations",
) -> list[str]:
    """Apply every migration not applied yet, each in its own transaction; returns those applied.

    `table` keeps the bookkeeping of one migration set apart from another's when two sets
    (the pipeline's and the reference ERP's) share a database.
    """
    migrations = load_migrations() if migrations is None else migrations
    bookkeeping = sql.Identifier(table)
    applied: list[str] = []
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
            try:
                conn.execute(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} ("
                        " version text PRIMARY KEY, name text NOT NULL,"
                        " applied_at timestamptz NOT NULL DEFAULT now())"
                    ).format(bookkeeping)
                )
                done = {
                    row[0]
                    for row in conn.execute(sql.SQL("SELECT version FROM {}").format(bookkeeping))
                }
                for migration in migrations:
                    if migration.version in done:
                        continue
                    with conn.transaction():
                        conn.execute(migration.sql.encode())
                        conn.execute(
                            sql.SQL("INSERT INTO {} (version, name) VALUES (%s, %s)").format(
                                bookkeeping
                            ),
                            (migration.version, migration.name),
                        )
                    applied.append(f"{migration.version}_{migration.name}")
                    log.info("applied migration %s_%s", migration.version, migration.name)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
    except psycopg.Error as exc:
        raise DatabaseError(f"migration failed: {exc}") from exc
    return applied


def check_url(database_url: str, name: str = "DATABASE_URL") -> None:
    """Raise ConfigurationError naming `name` when `database_url` is neither a PostgreSQL URL
    nor a key=value connection string (psycopg's parser says so). The parser's own message
    is not repeated: it can quote the string, password included."""
    try:
        conninfo_to_dict(database_url)
    except psycopg.ProgrammingError:
        raise ConfigurationError(
            f"{name} is not a PostgreSQL connection URL (postgresql://user@host:5432/dbname) "
            "or key=value connection string"
        ) from None


def describe(database_url: str) -> str:
    """`host:port/dbname` of a URL, without credentials, for printing."""
    parts: dict[str, Any] = conninfo_to_dict(database_url)
    host = parts.get("host", "localhost")
    port = parts.get("port", 5432)
    return f"{host}:{port}/{parts.get('dbname', '')}"
