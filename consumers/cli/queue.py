"""`erp-pipeline queue` and `history`: the read model's lists and an item's story."""

from __future__ import annotations

import json
from typing import Any

import click
import psycopg
from psycopg.rows import dict_row

from consumers.cli.common import load_settings

VIEWS = {
    "ready-to-export": "ready_to_export",
    "failed-to-export": "failed_to_export",
    "synced": "synced",
    "rejected": "rejected",
}
ITEM_TYPES = ["project", "commitment", "commitment_change_order", "prime_contract_change_order"]
COLUMNS = [
    ("item", "item"),
    ("number", "number"),
    ("title", "title"),
    ("amount", "amount"),
    ("project", "project_name"),
    ("sent by", "sent_by"),
    ("sent at", "sent_at"),
]


def _query(sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    url = load_settings().database_url
    if url is None:
        raise click.ClickException("DATABASE_URL is not set")
    try:
        with psycopg.connect(url.get_secret_value(), row_factory=dict_row) as conn:
            return list(conn.execute(sql.encode(), params))
    except psycopg.Error as exc:
        raise click.ClickException(f"could not read the read model: {exc}") from None


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return value.isoformat(timespec="minutes") if hasattr(value, "isoformat") else str(value)


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> None:
    cells = [[_cell(row.get(key)) for _, key in columns] for row in rows]
    widths = [
        max([len(title), *(len(r[i]) for r in cells)]) for i, (title, _) in enumerate(columns)
    ]
    click.echo("  ".join(title.ljust(w) for (title, _), w in zip(columns, widths, strict=True)))
    for row in cells:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


@click.command("queue")
@click.option("--company", required=True, help="Company id.")
@click.option(
    "--view", type=click.Choice(sorted(VIEWS)), default="ready-to-export", show_default=True
)
@click.option("--type", "item_type", type=click.Choice(ITEM_TYPES), default=None)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def queue_cmd(company: str, view: str, item_type: str | None, as_json: bool) -> None:
    """List a company's items in one view of the read model, oldest sent first."""
    rows = _query(
        "SELECT item_type || ':' || item_id AS item, item_type, item_id, number, title, amount,"
        " project_name, coalesce(sent_by_name, sent_by_email) AS sent_by, sent_at, last_error"
        " AS error, erp_reference, reason, submission_version FROM items"
        " WHERE company_id = %s AND status = %s AND (%s::text IS NULL OR item_type = %s)"
        " ORDER BY sent_at NULLS LAST, item_id",
        (company, VIEWS[view], item_type, item_type),
    )
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, default=_cell))
        return
    columns = COLUMNS + ([("error", "error")] if view == "failed-to-export" else [])
    _table(rows, columns)


@click.command("history")
@click.argument("item_key")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def history_cmd(item_key: str, as_json: bool) -> None:
    """Every status change of ITEM_KEY (`company:type:id`), oldest first."""
    company, _, rest = item_key.partition(":")
    item_type, _, item_id = rest.partition(":")
    if not (company and item_type and item_id):
        raise click.BadParameter("expected company:type:id", param_hint="ITEM_KEY")
    rows = _query(
        "SELECT occurred_at AS at, status, previous_status, submission_version AS version,"
        " actor_email AS by, coalesce(reason, '') AS reason, reasons, erp_reference"
        " FROM item_history WHERE company_id = %s AND item_type = %s AND item_id = %s"
        " ORDER BY occurred_at, source_offset",
        (company, item_type, item_id),
    )
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, default=_cell))
        return
    _table(
        rows,
        [
            ("at", "at"),
            ("status", "status"),
            ("from", "previous_status"),
            ("version", "version"),
            ("by", "by"),
            ("reason", "reason"),
        ],
    )
