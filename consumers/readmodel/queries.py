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


# --- the console: views with counts, filters and sorting, one item -------------------------

COUNTS = (
    "SELECT item_type, status, count(*) AS count FROM items WHERE company_id = %s"
    " GROUP BY 1, 2 ORDER BY 1, 2"
)
#: How a view may be sorted: the key the console names → the ORDER BY it stands for.
SORTS: dict[str, str] = {
    "age": "sent_at NULLS LAST, item_type, item_id",
    "-age": "sent_at DESC NULLS LAST, item_type, item_id",
    "project": "project_name NULLS LAST, sent_at, item_type, item_id",
    "sender": "coalesce(sent_by_name, sent_by_email) NULLS LAST, sent_at, item_type, item_id",
}
VIEW = (
    "SELECT item_type, item_id, number, title, amount, project_id, project_name,"
    " sent_by_email, sent_by_name, sent_at, decided_by_email, decided_at, status, reason,"
    " last_error, erp_reference, submission_version, sequence, updated_at,"
    # Refused at send lists every reason of the item's latest status change; other views
    # have none to show and skip the lookup
    " CASE WHEN items.status = 'send_refused' THEN"
    " (SELECT h.reasons FROM item_history h WHERE h.company_id = items.company_id"
    "  AND h.item_type = items.item_type AND h.item_id = items.item_id"
    "  ORDER BY h.sequence DESC NULLS LAST, h.occurred_at DESC LIMIT 1) END AS reasons FROM items"
    " WHERE company_id = %(company)s AND status = %(status)s AND item_type = ANY(%(types)s)"
    # a project's id exactly, or part of its name; part of the sender's e-mail or name; any case
    " AND (%(project)s::text IS NULL OR project_id = %(project)s"
    "      OR strpos(lower(project_name), lower(%(project)s)) > 0)"
    " AND (%(sender)s::text IS NULL OR strpos(lower(sent_by_email), lower(%(sender)s)) > 0"
    "      OR strpos(lower(sent_by_name), lower(%(sender)s)) > 0)"
    " AND (%(sent_before)s::timestamptz IS NULL OR sent_at <= %(sent_before)s)"
    " ORDER BY {order} LIMIT %(limit)s OFFSET %(offset)s"
)
ITEM = (
    "SELECT item_type, item_id, number, title, amount, project_id, project_name,"
    " sent_by_email, sent_by_name, sent_at, decided_by_email, decided_at, status, reason,"
    " last_error, erp_reference, submission_version, sequence, updated_at FROM items"
    " WHERE company_id = %s AND item_type = %s AND item_id = %s"
)
LATEST_REASONS = (
    "SELECT reasons FROM item_history WHERE company_id = %s AND item_type = %s AND item_id = %s"
    " AND status = 'send_refused' ORDER BY sequence DESC NULLS LAST, occurred_at DESC LIMIT 1"
)


def counts(database_url: str, company_id: str) -> list[dict[str, Any]]:
    """How many items of the company are in each (item_type, status): rows of item_type,
    status, count. Raises `ReadModelUnavailable`."""
    return _rows(database_url, COUNTS, (company_id,))


def view(
    database_url: str,
    company_id: str,
    status: str,
    item_types: list[str],
    *,
    project: str | None = None,
    sender: str | None = None,
    sent_before: Any = None,
    sort: str = "age",
    limit: int = 200,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """A company's items of `item_types` in `status`, filtered and sorted (a console view).

    `project` matches the project's id or name, `sender` the sender's e-mail or name,
    `sent_before` (a datetime) keeps items sent at or before it; `sort` is a key of `SORTS`
    (KeyError otherwise). Rows carry the `items` columns. Raises `ReadModelUnavailable`.
    """
    sql = VIEW.replace("{order}", SORTS[sort])
    params = {
        "company": company_id,
        "status": status,
        "types": item_types,
        "project": project,
        "sender": sender,
        "sent_before": sent_before,
        "limit": limit,
        "offset": offset,
    }
    try:
        with psycopg.connect(database_url, row_factory=dict_row) as conn:
            return list(conn.execute(sql.encode(), params))
    except psycopg.Error as exc:
        raise ReadModelUnavailable(f"could not read the read model: {exc}") from exc


def item(database_url: str, company_id: str, item_type: str, item_id: str) -> dict[str, Any] | None:
    """One item's current row (the `items` columns plus `reasons`, the send-time refusals of
    its latest refused submission), None when the read model has never heard of it.
    Raises `ReadModelUnavailable`."""
    found = _rows(database_url, ITEM, (company_id, item_type, item_id))
    if not found:
        return None
    row = found[0]
    reasons = _rows(database_url, LATEST_REASONS, (company_id, item_type, item_id))
    row["reasons"] = reasons[0]["reasons"] if reasons and row["status"] == "send_refused" else []
    return row


SUBMISSIONS = (
    "SELECT h.submission_version AS version, s.occurred_at AS sent_at, s.actor_email AS sent_by,"
    " s.payload, s.event_id FROM item_submissions s"
    " LEFT JOIN item_history h ON h.event_id = s.status_event_id"
    " WHERE s.company_id = %s AND s.item_type = %s AND s.item_id = %s"
    " AND s.event_type = 'ItemSubmitted'"
    " ORDER BY h.submission_version NULLS LAST, s.source_partition, s.source_offset"
)
DECIDED = (
    "SELECT h.sequence, h.occurred_at AS at, h.status, h.previous_status,"
    " h.submission_version AS version, h.actor_email AS by, coalesce(h.reason, '') AS reason,"
    " h.reasons, h.erp_reference, d.event_type AS decision, d.payload AS decision_payload"
    " FROM item_history h LEFT JOIN item_decisions d ON d.status_event_id = h.event_id"
    " WHERE h.company_id = %s AND h.item_type = %s AND h.item_id = %s"
    " ORDER BY h.sequence NULLS FIRST, h.occurred_at, h.source_offset"
)
REFUSED = (
    "SELECT occurred_at AS at, refused_event_type AS event_type, stage, error, actor_email AS by"
    " FROM item_refusals WHERE company_id = %s AND item_type = %s AND item_id = %s"
    " ORDER BY occurred_at, event_id"
)


def submissions(
    database_url: str, company_id: str, item_type: str, item_id: str
) -> list[dict[str, Any]]:
    """Every submission of one item with its snapshot: version (None until the processor has
    applied it), sent_at, sent_by, payload (the ItemSubmitted payload as JSON), oldest version
    first. Raises `ReadModelUnavailable`."""
    return _rows(database_url, SUBMISSIONS, (company_id, item_type, item_id))


def history_with_decisions(
    database_url: str, company_id: str, item_type: str, item_id: str
) -> list[dict[str, Any]]:
    """`history`, each status change with the decision that made it when one did (`decision`,
    the event type; `decision_payload`, the fields entered). Raises `ReadModelUnavailable`."""
    return _rows(database_url, DECIDED, (company_id, item_type, item_id))


def refusals(
    database_url: str, company_id: str, item_type: str, item_id: str
) -> list[dict[str, Any]]:
    """Every refused submission or decision of one item (at, event_type, stage, error, by),
    oldest first. Raises `ReadModelUnavailable`."""
    return _rows(database_url, REFUSED, (company_id, item_type, item_id))
