"""The reference ERP's demo company: job templates with cost codes, and vendors (idempotent)."""

from __future__ import annotations

import psycopg

from consumers import db
from consumers.sample_events import COMPANY

#: Job templates: code → (description, [(phase code, description)]).
TEMPLATES: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "COMM": (
        "Commercial building",
        [
            ("01-100", "General conditions"),
            ("02-200", "Sitework"),
            ("03-300", "Cast-in-place concrete"),
            ("05-100", "Structural steel"),
            ("08-100", "Doors and frames"),
            ("09-900", "Painting"),
            ("15-400", "Plumbing"),
            ("16-100", "Electrical"),
        ],
    ),
    "TI": (
        "Tenant improvement",
        [
            ("01-100", "General conditions"),
            ("06-100", "Rough carpentry"),
            ("09-250", "Drywall"),
            ("09-900", "Painting"),
            ("16-100", "Electrical"),
        ],
    ),
    "RES": (
        "Residential",
        [
            ("01-100", "General conditions"),
            ("03-300", "Cast-in-place concrete"),
            ("06-100", "Rough carpentry"),
            ("07-300", "Roofing"),
            ("09-900", "Painting"),
        ],
    ),
}

VENDORS: dict[str, str] = {
    "V1001": "Lone Star Concrete",
    "V1002": "Hill Country Steel",
    "V1003": "Capitol Electric",
    "V1004": "Bluebonnet Painting",
    "V1005": "Pecan Street Plumbing",
}


def migrate(database_url: str) -> list[str]:
    """Apply the reference ERP's schema (and the export ledger) to its database."""
    return db.migrate(
        database_url, db.load_migrations("consumers.erp_migrations"), table="erp_schema_migrations"
    )


def seed(database_url: str, company_id: str = COMPANY) -> int:
    """Load the demo company's templates, cost codes and vendors; returns how many rows were new."""
    added = 0
    with psycopg.connect(database_url) as conn, conn.transaction():
        for code, (description, phases) in TEMPLATES.items():
            added += conn.execute(
                "INSERT INTO spectrum.job_templates (company_id, template_code, description)"
                " VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                (company_id, code, description),
            ).rowcount
            for phase, phase_description in phases:
                added += conn.execute(
                    "INSERT INTO spectrum.template_cost_codes"
                    " (company_id, template_code, phase_code, description)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (company_id, code, phase, phase_description),
                ).rowcount
        for vendor, name in VENDORS.items():
            added += int(add_vendor(conn, company_id, vendor, name))
    return added


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
