"""Reading the pipeline's PostgreSQL and the reference ERP's database; seeding the ERP."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql as pgsql
from psycopg.conninfo import make_conninfo

from consumers.dev import erp_seed
from pipeline.settings import Settings


def _fetch(url: str, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql.encode(), params).fetchall()


def rows(settings: Settings, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows from the pipeline's database (`DATABASE_URL` of `settings`, never a proxy)."""
    return _fetch(settings.require_database_url(), sql, params)


def erp_rows(settings: Settings, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows from the reference ERP's database."""
    return _fetch(settings.require_erp_database_url(), sql, params)


def statuses(settings: Settings, company: str) -> dict[str, str]:
    """item id → status in the read model, for one company."""
    found = rows(settings, "SELECT item_id, status FROM items WHERE company_id = %s", company)
    return {str(item): str(status) for item, status in found}


def seeded_company(settings: Settings, company: str) -> str:
    """Seed the demo templates and vendors for `company` in the reference ERP."""
    erp_seed.seed(settings.require_erp_database_url(), company)
    return company


def create_database(server_url: str, dbname: str) -> str:
    """Create a database on the server of `server_url` (a test run's own); returns its URL."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(dbname)))
    return make_conninfo(server_url, dbname=dbname)


def drop_database(server_url: str, dbname: str) -> None:
    """Drop a database (closing its other connections first)."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(dbname))
        )
