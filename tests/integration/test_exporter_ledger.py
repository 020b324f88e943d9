"""The ledger decides "exported or not", through the exporter and the reference ERP (#19).

A write the ERP committed but answered with an error, and a failure the ERP could not record,
never become a published failure the ledger does not hold; an item re-sent after an export
the ledger shows done is answered with that export's ERP reference, never written twice.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from consumers.export.port import ErpError, ExportOutcome, TransientErpError
from consumers.export.spectrum.adapter import SpectrumErp
from consumers.export.worker import serve
from consumers.worker.runtime import Runtime
from pipeline.settings import Settings
from tests.support.db import erp_rows, seeded_company
from tests.support.events import project_export
from tests.support.kafka import events_of, isolated, publish_events, records_until
from topics.events import ExportRequested
from topics.payloads import KafkaSource
from topics.specs import EXPORT_RESULTS, EXPORTS

COMPANY = "acme-ledger"


class LostAnswers(SpectrumErp):
    """The reference ERP, where the first answer to each export is lost after its commit and
    the first failure to record finds the ERP unreachable."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.lost: set[str] = set()
        self.unrecorded: set[str] = set()

    async def export(self, request: ExportRequested, source: KafkaSource) -> ExportOutcome:
        outcome = await super().export(request, source)
        if request.payload.export_id not in self.lost:
            self.lost.add(request.payload.export_id)
            raise TransientErpError("erp_unavailable", "connection lost after the commit")
        return outcome

    async def export_batch(self, requests: Any) -> list[ExportOutcome | ErpError | None]:
        return [None] * len(requests)  # every export goes alone, through `export`

    async def record_failure(
        self, request: ExportRequested, source: KafkaSource, error: ErpError
    ) -> ExportOutcome:
        if request.payload.export_id not in self.unrecorded:
            self.unrecorded.add(request.payload.export_id)
            raise TransientErpError("erp_unavailable", "connection refused")
        return await super().record_failure(request, source, error)


@pytest.fixture(scope="module")
async def exporting(settings: Settings) -> AsyncIterator[Settings]:
    """The exporter in this process, one try per export before a failure is final."""
    mine = (await isolated(settings, "ledger")).model_copy(
        update={"exporter_max_attempts": 1, "exporter_retry_base_s": 0.05}
    )
    seeded_company(mine, COMPANY)
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(Runtime.local(mine, stop), erp=LostAnswers(mine.require_erp_database_url()))
    )
    try:
        yield mine
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def _results(settings: Settings, export_id: str) -> list[Any]:
    def done(records: list[object]) -> bool:
        return any(e.payload.export_id == export_id for e in events_of(records, EXPORT_RESULTS))

    records = await records_until(settings, EXPORT_RESULTS, done)
    return [e for e in events_of(records, EXPORT_RESULTS) if e.payload.export_id == export_id]


async def test_a_write_the_erp_committed_is_exported_although_its_answer_was_lost(
    exporting: Settings,
) -> None:
    export = project_export("prj-l1", "RMO-L1", company=COMPANY)
    await publish_events(exporting, EXPORTS, [export])
    [result] = await _results(exporting, export["payload"]["export_id"])
    assert result.event_type == "ItemExported", result
    assert result.payload.erp_reference == "RMO-L1"


async def test_an_item_re_sent_after_an_export_the_ledger_holds_is_not_written_again(
    exporting: Settings,
) -> None:
    first = project_export("prj-l2", "RMO-L2", company=COMPANY)
    await publish_events(exporting, EXPORTS, [first])
    [done] = await _results(exporting, first["payload"]["export_id"])
    assert done.event_type == "ItemExported"
    again = project_export("prj-l2", "RMO-L2", company=COMPANY, export_id=str(uuid.uuid4()))
    again["payload"]["submission_version"] = 2
    await publish_events(exporting, EXPORTS, [again])
    [result] = await _results(exporting, again["payload"]["export_id"])
    assert result.event_type == "ItemExported", result
    assert result.payload.erp_reference == "RMO-L2"
    assert erp_rows(
        exporting,
        "SELECT count(*) FROM spectrum.jobs WHERE company_id = %s"
        " AND upstream_project_id = 'prj-l2'",
        COMPANY,
    ) == [(1,)]
