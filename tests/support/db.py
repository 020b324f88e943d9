"""Reading the pipeline's PostgreSQL and the reference ERP's database; seeding the ERP."""

from __future__ import annotations

from typing import Any

import psycopg

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
