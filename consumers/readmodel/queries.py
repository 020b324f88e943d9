"""Every read of the read model: an approver's list, an item's history, the items to verify."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row


class ReadModelUnavailable(RuntimeError):
    """The read model could not be read (database unreachable, schema missing, ...)."""


QUEUE = (
    "SELECT item_type || ':' || item_id AS item, item_type, item_id, number, title, amount,"
    " project_name, coalesce(sent_by_name, sent_by_email) AS sent_by, sent_at, last_error"
    " AS error, erp_reference, reason, submission_version FROM items"
    " WHERE company_id = %s AND status = %s AND (%s::text IS NULL OR item_type = %s)"
    " ORDER BY sent_at NULLS LAST, item_id"
)
HISTORY = (
    "SELECT sequence, occurred_at AS at, status, previous_status, submission_version AS version,"
    " actor_email AS by, coalesce(reason, '') AS reason, reasons, erp_reference"
    " FROM item_history WHERE company_id = %s AND item_type = %s AND item_id = %s"
    " ORDER BY sequence NULLS FIRST, occurred_at, source_offset"
)
CURRENT = (
    "SELECT company_id || ':' || item_type || ':' || item_id AS key, status,"
    " submission_version, erp_reference, sequence FROM items"
    " WHERE (%s::text IS NULL OR company_id = %s)"
)


def _rows(database_url: str, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    try:
        with psycopg.connect(database_url, row_factory=dict_row) as conn:
            return list(conn.execute(sql.encode(), params))
    except psycopg.Error as exc:
        raise ReadModelUnavailable(f"could not read the read model: {exc}") from exc


def queue(
    database_url: str, company_id: str, status: str, item_type: str | None = None
) -> list[dict[str, Any]]:
    """A company's items in one status (a Procore ERP view), oldest sent first.

    Each row: item (`type:id`), item_type, item_id, number, title, amount, project_name,
    sent_by (name, else e-mail), sent_at, error, erp_reference, reason, submission_version.
    Raises `ReadModelUnavailable`.
    """
    return _rows(database_url, QUEUE, (company_id, status, item_type, item_type))


def history(
    database_url: str, company_id: str, item_type: str, item_id: str
) -> list[dict[str, Any]]:
    """Every status change of one item, oldest first (at, status, previous_status, version,
    by, reason, reasons, erp_reference). Raises `ReadModelUnavailable`."""
    return _rows(database_url, HISTORY, (company_id, item_type, item_id))


def current(database_url: str, company_id: str | None = None) -> list[dict[str, Any]]:
    """Every item's key, status, submission_version and erp_reference (one company or all).

    Raises `ReadModelUnavailable`.
    """
    return _rows(database_url, CURRENT, (company_id, company_id))
