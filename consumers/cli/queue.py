"""`erp-pipeline queue` and `history`: the read model's lists and an item's story."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from consumers.cli.common import load_settings
from consumers.readmodel import queries

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


HISTORY_COLUMNS = [
    ("seq", "sequence"),
    ("at", "at"),
    ("status", "status"),
    ("from", "previous_status"),
    ("version", "version"),
    ("by", "by"),
    ("reason", "reason"),
]


def _read(query: Callable[..., list[dict[str, Any]]], *args: Any) -> list[dict[str, Any]]:
    """Rows of a read-model query, or a clear CLI error."""
    url = load_settings().database_url
    if url is None:
        raise click.ClickException("DATABASE_URL is not set")
    try:
        return query(url.get_secret_value(), *args)
    except queries.ReadModelUnavailable as exc:
        raise click.ClickException(str(exc)) from None


def _show(rows: list[dict[str, Any]], columns: list[tuple[str, str]], as_json: bool) -> None:
    """Rows as JSON lines, or as an aligned table of `columns`."""
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, default=_cell))
    else:
        _table(rows, columns)


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
    rows = _read(queries.queue, company, VIEWS[view], item_type)
    columns = COLUMNS + ([("error", "error")] if view == "failed-to-export" else [])
    _show(rows, columns, as_json)


@click.command("history")
@click.argument("item_key")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def history_cmd(item_key: str, as_json: bool) -> None:
    """Every status change of ITEM_KEY (`company:type:id`), oldest first."""
    company, _, rest = item_key.partition(":")
    item_type, _, item_id = rest.partition(":")
    if not (company and item_type and item_id):
        raise click.BadParameter("expected company:type:id", param_hint="ITEM_KEY")
    _show(_read(queries.history, company, item_type, item_id), HISTORY_COLUMNS, as_json)
