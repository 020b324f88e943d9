"""What the approver entered at accept reaches the reference ERP, through the exporter (#19)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from consumers.dev import samples as se
from pipeline.settings import Settings
from tests.support.db import erp_rows, seeded_company
from tests.support.events import commitment_export, export_requested, project_export
from tests.support.exporter import exporter_running
from tests.support.kafka import events_of, isolated, publish_events, records_until
from topics.specs import EXPORT_RESULTS, EXPORTS

COMPANY = "acme-accept-fields"


@pytest.fixture(scope="module")
async def exporting(settings: Settings) -> AsyncIterator[Settings]:
    """Topics of this module's own, a seeded company, and the exporter running."""
    mine = await isolated(settings, "fields")
    seeded_company(mine, COMPANY)
    async with exporter_running(mine):
        yield mine


async def _exported(settings: Settings, *events: dict[str, object]) -> None:
    """Publish exports one after another, each waited for until the ERP has it."""
    for event in events:
        export_id = event["payload"]["export_id"]  # type: ignore[index]
        await publish_events(settings, EXPORTS, [event])

        def done(records: list[object], export_id: object = export_id) -> bool:
            return any(
                e.payload.export_id == export_id and e.event_type == "ItemExported"
                for e in events_of(records, EXPORT_RESULTS)
            )

        await records_until(settings, EXPORT_RESULTS, done)


async def test_accept_fields_and_pcco_lines_are_written_to_the_erp(exporting: Settings) -> None:
    project = project_export("prj-f1", "RMO-F1", company=COMPANY)
    commitment = commitment_export("sc-f1", "prj-f1", number="SC-F1", company=COMPANY)
    commitment["payload"]["accept_fields"] = {"details": "Retainage 10 %, pay when paid"}
    cco_submitted = se.cco_submitted("cco-f1")
    cco_submitted["payload"]["snapshot"]["commitment"]["id"] = "sc-f1"
    cco = export_requested(
        cco_submitted,
        {"change_order_date": "2026-11-21", "description": "Footings 600 mm deeper"},
        company=COMPANY,
    )
    pcco_submitted = se.pcco_submitted("pcco-f1")
    pcco_submitted["payload"]["project"] = {"id": "prj-f1", "name": "Riverside Medical Office"}
    pcco_submitted["payload"]["snapshot"]["line_items"].append(
        {
            "id": "pli-2",
            "description": "Lobby lighting",
            "amount": "-1500.50",
            "associated_prime_line_item": "PL-9",
        }
    )
    pcco = export_requested(pcco_submitted, {"transaction_date": "2026-11-22"}, company=COMPANY)
    await _exported(exporting, project, commitment, cco, pcco)

    assert erp_rows(
        exporting,
        "SELECT notes FROM spectrum.commitments WHERE company_id = %s AND commitment_id = 'SC-F1'",
        COMPANY,
    ) == [("Retainage 10 %, pay when paid",)]
    assert erp_rows(
        exporting,
        "SELECT description FROM spectrum.change_orders"
        " WHERE company_id = %s AND commitment_id = 'SC-F1'",
        COMPANY,
    ) == [("Footings 600 mm deeper",)]
    assert erp_rows(
        exporting,
        "SELECT line_number, prime_line_item, description, amount"
        " FROM spectrum.ar_change_request_lines"
        " WHERE company_id = %s AND job_number = 'RMO-F1' AND request_number = 'PCCO-001'"
        " ORDER BY line_number",
        COMPANY,
    ) == [
        (1, "PL-7", "Lobby stone", Decimal("48000.0000")),
        (2, "PL-9", "Lobby lighting", Decimal("-1500.5000")),
    ]
