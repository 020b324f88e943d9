"""The reference ERP's demo company (dev, tests): job templates, cost codes, vendors."""

from __future__ import annotations

import psycopg

from consumers.dev.samples import COMPANY
from consumers.export.spectrum.schema import add_vendor

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
