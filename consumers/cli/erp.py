"""`erp-pipeline erp ...`: the reference ERP (Spectrum-shaped schema in PostgreSQL)."""

from __future__ import annotations

import click
import psycopg

from consumers.cli.common import load_settings
from consumers.dev import erp_seed
from consumers.dev.samples import COMPANY
from consumers.export.spectrum import schema
from consumers.worker import db


def _url() -> str:
    try:
        return load_settings().require_erp_database_url()
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None


@click.group("erp")
def erp_group() -> None:
    """The reference ERP at ERP_DATABASE_URL (default DATABASE_URL)."""


@erp_group.command("migrate")
def erp_migrate_cmd() -> None:
    """Apply the reference ERP's schema and the export ledger."""
    try:
        applied = schema.migrate(_url())
    except db.DatabaseError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"applied: {', '.join(applied)}" if applied else "ERP schema is up to date")


@erp_group.command("seed")
@click.option("--company", default=COMPANY, show_default=True, help="Company id to seed.")
def erp_seed_cmd(company: str) -> None:
    """Load the demo company: job templates with cost codes, vendors (idempotent)."""
    url = _url()
    try:
        schema.migrate(url)
        added = erp_seed.seed(url, company)
    except (db.DatabaseError, psycopg.Error) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"seeded {company}: {added} new row(s)")


@erp_group.command("add-vendor")
@click.argument("vendor_id")
@click.argument("name")
@click.option("--company", default=COMPANY, show_default=True)
def erp_add_vendor_cmd(vendor_id: str, name: str, company: str) -> None:
    """Add vendor VENDOR_ID named NAME to the ERP, e.g. before retrying a failed commitment."""
    try:
        with psycopg.connect(_url()) as conn:
            added = schema.add_vendor(conn, company, vendor_id, name)
    except psycopg.Error as exc:
        raise click.ClickException(str(exc).strip()) from None
    click.echo(f"vendor {vendor_id} {'added' if added else 'already exists'} for {company}")
