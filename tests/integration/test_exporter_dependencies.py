"""A dependent item waits for the item it depends on, through the exporter and the reference ERP.

A commitment accepted right after its project reaches the exporter while the project's own
export may still be running: it waits (retried, bounded by EXPORTER_MAX_ATTEMPTS) instead of
failing for good with "job not found", and fails with the catalogue's message only if the job
never appears (#19).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from consumers.dev import samples as se
from consumers.export.worker import serve
from consumers.worker.runtime import Runtime
from pipeline.settings import Settings
from tests.support.db import erp_rows, seeded_company
from tests.support.events import commitment_export, export_requested, project_export
from tests.support.kafka import events_of, isolated, publish_events, records_until
from tests.support.waiting import eventually_async
from topics.specs import EXPORT_RESULTS, EXPORTS

COMPANY = "acme-dependencies"


@pytest.fixture(scope="module")
async def exporter(settings: Settings) -> AsyncIterator[tuple[Settings, Runtime]]:
    """The exporter in this process on topics of this module's own, its runtime to watch."""
    mine = (await isolated(settings, "depends")).model_copy(
        update={"exporter_max_attempts": 8, "exporter_retry_base_s": 0.2}
    )
    seeded_company(mine, COMPANY)
    stop = asyncio.Event()
    runtime = Runtime.local(mine, stop)
    task = asyncio.create_task(serve(runtime))
    try:
        yield mine, runtime
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def _waits(runtime: Runtime) -> float:
    """Transient attempts the exporter has made so far."""
    found = runtime.metrics.registry.get_sample_value(
        "erp_pipeline_export_attempts_total", {"outcome": "transient"}
    )
    return found or 0.0


async def _result(settings: Settings, export_id: str) -> object:
    def done(records: list[object]) -> bool:
        return any(e.payload.export_id == export_id for e in events_of(records, EXPORT_RESULTS))

    records = await records_until(settings, EXPORT_RESULTS, done)
    return next(e for e in events_of(records, EXPORT_RESULTS) if e.payload.export_id == export_id)


async def test_a_commitment_waits_for_its_project_exported_meanwhile(
    exporter: tuple[Settings, Runtime],
) -> None:
    settings, runtime = exporter
    before = _waits(runtime)
    commitment = commitment_export("sc-d1", "prj-d1", number="SC-D1", company=COMPANY)
    await publish_events(settings, EXPORTS, [commitment])
    # the commitment is tried, finds no job, and waits...
    await eventually_async(
        lambda: _waits(runtime) > before,
        timeout=60,
        message="the commitment was never tried before its job existed",
    )
    project = project_export("prj-d1", "RMO-D1", company=COMPANY)
    await publish_events(settings, EXPORTS, [project])
    # ...until its project's export created the job
    done = await _result(settings, commitment["payload"]["export_id"])
    assert done.event_type == "ItemExported", done  # type: ignore[attr-defined]
    assert erp_rows(
        settings,
        "SELECT job_number FROM spectrum.commitments WHERE company_id = %s AND upstream_id = %s",
        COMPANY,
        "sc-d1",
    ) == [("RMO-D1",)]


async def test_a_commitment_whose_job_never_appears_fails_with_the_catalogue_message(
    exporter: tuple[Settings, Runtime],
) -> None:
    settings, _ = exporter
    commitment = commitment_export("sc-d2", "prj-never", number="SC-D2", company=COMPANY)
    await publish_events(settings, EXPORTS, [commitment])
    failed = await _result(settings, commitment["payload"]["export_id"])
    assert failed.event_type == "ExportAttemptFailed"  # type: ignore[attr-defined]
    assert failed.payload.error_code == "job_not_exported"  # type: ignore[attr-defined]
    assert failed.payload.error_message.startswith(  # type: ignore[attr-defined]
        "Project Riverside Medical Office (prj-never) has no job in Spectrum yet"
    )
    assert "gave up after 8 tries" in failed.payload.error_message  # type: ignore[attr-defined]


def _cco_export(item_id: str, commitment: str, project: str) -> dict[str, Any]:
    """A CCO on `commitment` (of `project`), accepted: its export request."""
    submitted = se.cco_submitted(item_id, project={"id": project, "name": "Riverside"})
    submitted["payload"]["snapshot"]["commitment"] = {
        "id": commitment,
        "number": commitment.upper(),
        "erp_synced": True,
    }
    fields = {"change_order_date": "2026-11-21"}
    return export_requested(submitted, fields, company=COMPANY)


async def test_an_item_waiting_in_one_batch_never_holds_back_what_it_waits_for(
    exporter: tuple[Settings, Runtime],
) -> None:
    """A CCO exported in a batch before its commitment, which comes in a later fetch: the
    CCO's wait holds only the CCO, so the commitment is exported and then the CCO too."""
    settings, runtime = exporter
    project = project_export("prj-d3", "RMO-D3", company=COMPANY)
    await publish_events(settings, EXPORTS, [project])
    assert (await _result(settings, project["payload"]["export_id"])).event_type == ("ItemExported")
    before = _waits(runtime)
    cco = _cco_export("cco-d3", "sc-d3", "prj-d3")
    await publish_events(settings, EXPORTS, [cco])
    await eventually_async(
        lambda: _waits(runtime) > before,
        timeout=60,
        message="the CCO was never tried before its commitment existed",
    )
    commitment = commitment_export("sc-d3", "prj-d3", number="SC-D3", company=COMPANY)
    await publish_events(settings, EXPORTS, [commitment])
    for request in (commitment, cco):
        done = await _result(settings, request["payload"]["export_id"])
        assert done.event_type == "ItemExported", done  # type: ignore[attr-defined]
    assert erp_rows(
        settings,
        "SELECT commitment_id FROM spectrum.change_orders"
        " WHERE company_id = %s AND upstream_id = %s",
        COMPANY,
        "cco-d3",
    ) == [("SC-D3",)]
