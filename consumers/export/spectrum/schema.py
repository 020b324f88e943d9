"""The reference ERP's schema (and the export ledger) applied to its database, and vendor upkeep."""

from __future__ import annotations

import psycopg

from consumers.worker import db


def migrate(database_url: str) -> list[str]:
    """Apply the reference ERP's schema (and the export ledger) to its database.

    Returns the versions newly applied; raises `psycopg.Error` when the database refuses.
    """
    return db.migrate(
        database_url,
        db.load_migrations("consumers.export.spectrum.migrations"),
        table="erp_schema_migrations",
    )


def add_vendor(
    conn: psycopg.Connection[tuple[object, ...]], company_id: str, vendor_code: str, name: str
) -> bool:
    """Add a vendor to the ERP (a no-op when it exists); True when it was new."""
    cursor = conn.execute(
        "INSERT INTO spectrum.vendors (company_id, vendor_code, name) VALUES (%s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        (company_id, vendor_code, name),
    )
    return cursor.rowcount == 1
