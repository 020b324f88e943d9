"""The exporter against the real broker and the reference ERP: exports, ERP refusals, retries."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from consumers.dev import samples as se
from pipeline.settings import Settings
from tests.support.db import erp_rows, seeded_company
from tests.support.events import commitment_export, export_requested, project_export
from tests.support.exporter import exporter_running
from tests.support.kafka import events_of, isolated, publish_events, publish_raw, records_until
from tests.support.processes import cli
from topics.specs import DEAD_LETTERS, EXPORT_RESULTS, EXPORTS, FAILED_TO_EXPORT, NOTIFICATIONS

COMPANY = "acme-acceptance"


@pytest.fixture(scope="module")
async def exporting(settings: Settings) -> AsyncIterator[Settings]:
    """Topics of this module's own, a seeded company, and the exporter running."""
    # an item whose job or commitment is not exported waits: a few short tries here
    mine = (await isolated(settings, "accept")).model_copy(
        update={"exporter_max_attempts": 3, "exporter_retry_base_s": 0.05}
    )
    seeded_company(mine, COMPANY)
    async with exporter_running(mine):
        yield mine


def _results_for(export_id: str, event_type: str):  # type: ignore[no-untyped-def]
    def done(records: list[object]) -> bool:
        return any(
            e.event_type == event_type and e.payload.export_id == export_id
            for e in events_of(records, EXPORT_RESULTS)
        )

    return done


async def _result(settings: Settings, export_id: str, event_type: str) -> object:
    records = await records_until(settings, EXPORT_RESULTS, _results_for(export_id, event_type))
    return next(
        e
        for e in events_of(records, EXPORT_RESULTS)
        if e.event_type == event_type and e.payload.export_id == export_id
    )


async def test_an_accepted_project_becomes_a_job_from_its_template(exporting: Settings) -> None:
    export = project_export("prj-a1", "RMO-A1", template="COMM", company=COMPANY)
    await publish_events(exporting, EXPORTS, [export])
    result = await _result(exporting, export["payload"]["export_id"], "ItemExported")
    assert result.payload.erp_reference == "RMO-A1"  # type: ignore[attr-defined]
    assert erp_rows(
        exporting,
        "SELECT template_code, upstream_project_id FROM spectrum.jobs"
        " WHERE company_id = %s AND job_number = 'RMO-A1'",
        COMPANY,
    ) == [("COMM", "prj-a1")]
    phases = erp_rows(
        exporting,
        "SELECT phase_code FROM spectrum.job_phases WHERE company_id = %s"
        " AND job_number = 'RMO-A1' ORDER BY 1",
        COMPANY,
    )
    template = erp_rows(
        exporting,
        "SELECT phase_code FROM spectrum.template_cost_codes"
        " WHERE company_id = %s AND template_code = 'COMM' ORDER BY 1",
        COMPANY,
    )
    assert phases == template and ("03-300",) in phases
    ledger = erp_rows(
        exporting,
        "SELECT outcome, erp_reference, source_topic FROM"
        " exporter.export_ledger WHERE export_id = %s",
        export["payload"]["export_id"],
    )
    assert ledger == [("exported", "RMO-A1", f"{exporting.erp_topic_prefix}erp.exports")]


async def test_a_redelivered_request_re_emits_the_same_result_without_writing(
    exporting: Settings,
) -> None:
    export = project_export("prj-a2", "RMO-A2", company=COMPANY)
    export_id = export["payload"]["export_id"]
    await publish_events(exporting, EXPORTS, [export])
    await _result(exporting, export_id, "ItemExported")
    await publish_events(exporting, EXPORTS, [{**export, "event_id": str(uuid.uuid4())}])

    def twice(records: list[object]) -> bool:
        return (
            sum(e.payload.export_id == export_id for e in events_of(records, EXPORT_RESULTS)) == 2
        )

    results = [
        e
        for e in events_of(await records_until(exporting, EXPORT_RESULTS, twice), EXPORT_RESULTS)
        if e.payload.export_id == export_id
    ]
    assert results[0] == results[1]
    assert erp_rows(
        exporting,
        "SELECT count(*) FROM spectrum.jobs WHERE company_id = %s"
        " AND upstream_project_id = 'prj-a2'",
        COMPANY,
    ) == [(1,)]


async def test_the_same_job_id_for_another_project_lands_in_failed_to_export(
    exporting: Settings,
) -> None:
    first = project_export("prj-a3", "RMO-A3", company=COMPANY)
    await publish_events(exporting, EXPORTS, [first])
    await _result(exporting, first["payload"]["export_id"], "ItemExported")
    second = project_export("prj-a4", "RMO-A3", company=COMPANY)
    export_id = second["payload"]["export_id"]
    await publish_events(exporting, EXPORTS, [second])

    failed = await _result(exporting, export_id, "ExportAttemptFailed")
    assert failed.payload.retryable is False  # type: ignore[attr-defined]
    records = await records_until(
        exporting,
        FAILED_TO_EXPORT,
        lambda rs: any(e.payload.export_id == export_id for e in events_of(rs, FAILED_TO_EXPORT)),
    )
    record = next(
        r for r in records if events_of([r], FAILED_TO_EXPORT)[0].payload.export_id == export_id
    )
    dead = events_of([record], FAILED_TO_EXPORT)[0]
    assert dead.payload.error_code == "duplicate_job"
    assert dead.payload.error_message == "Job ID RMO-A3 already exists in Spectrum"
    assert dead.payload.attempt == 1
    assert dead.payload.source.topic == f"{exporting.erp_topic_prefix}erp.exports"
    headers = dict(record.headers)
    assert headers["__connect.errors.offset"] == str(dead.payload.source.offset).encode()
    assert (
        headers["__connect.errors.exception.message"] == b"Job ID RMO-A3 already exists in Spectrum"
    )

    notices = await records_until(
        exporting,
        NOTIFICATIONS,
        lambda rs: sum(e.item.id == "prj-a4" for e in events_of(rs, NOTIFICATIONS)) == 2,
    )
    to = {e.payload.to for e in events_of(notices, NOTIFICATIONS) if e.item.id == "prj-a4"}
    assert to == {se.SENDER["email"], se.APPROVER["email"]}
    assert erp_rows(
        exporting,
        "SELECT upstream_project_id FROM spectrum.jobs WHERE company_id = %s"
        " AND job_number = 'RMO-A3'",
        COMPANY,
    ) == [("prj-a3",)]
    assert erp_rows(
        exporting,
        "SELECT outcome, attempt FROM exporter.export_ledger WHERE export_id = %s",
        export_id,
    ) == [("failed", 1)]


async def test_an_unknown_vendor_fails_and_a_retry_succeeds_once_the_vendor_exists(
    exporting: Settings,
    worker_env: dict[str, str],
) -> None:
    project = project_export("prj-a5", "RMO-A5", company=COMPANY)
    await publish_events(exporting, EXPORTS, [project])
    await _result(exporting, project["payload"]["export_id"], "ItemExported")

    commitment = commitment_export(
        "sc-a5", "prj-a5", vendor="V7777", number="SC-A5", company=COMPANY
    )
    export_id = commitment["payload"]["export_id"]
    await publish_events(exporting, EXPORTS, [commitment])
    failed = await _result(exporting, export_id, "ExportAttemptFailed")
    assert failed.payload.error_code == "unknown_vendor"  # type: ignore[attr-defined]
    assert failed.payload.error_message == "Vendor V7777 does not exist in Spectrum"  # type: ignore[attr-defined]

    added = cli(worker_env, "erp", "add-vendor", "V7777", "Travis Rebar", "--company", COMPANY)
    assert added.returncode == 0, added.stdout + added.stderr
    assert "added" in added.stdout
    retry = commitment_export(
        "sc-a5",
        "prj-a5",
        vendor="V7777",
        number="SC-A5",
        company=COMPANY,
        export_id=export_id,
        attempt=2,
    )
    await publish_events(exporting, EXPORTS, [retry])
    exported = await _result(exporting, export_id, "ItemExported")
    assert exported.payload.erp_reference == "SC-A5"  # type: ignore[attr-defined]
    assert erp_rows(
        exporting,
        "SELECT job_number, vendor_code FROM spectrum.commitments"
        " WHERE company_id = %s AND upstream_id = 'sc-a5'",
        COMPANY,
    ) == [("RMO-A5", "V7777")]
    assert erp_rows(
        exporting,
        "SELECT phase_code FROM spectrum.commitment_lines"
        " WHERE company_id = %s AND commitment_id = 'SC-A5'",
        COMPANY,
    ) == [("03-300",)]
    assert erp_rows(
        exporting,
        "SELECT outcome, attempt FROM exporter.export_ledger WHERE export_id = %s",
        export_id,
    ) == [("exported", 2)]


async def test_bad_input_is_dead_lettered_and_the_exporter_keeps_going(
    exporting: Settings,
) -> None:
    await publish_raw(exporting, EXPORTS, b"\xff not json", key=b"acme-acceptance:project:junk")
    after = project_export("prj-a6", "RMO-A6", company=COMPANY)
    await publish_events(exporting, EXPORTS, [after])
    refused = events_of(await records_until(exporting, DEAD_LETTERS, bool), DEAD_LETTERS)
    assert refused[0].payload.stage == "decode"
    assert refused[0].company_id == COMPANY
    await _result(exporting, after["payload"]["export_id"], "ItemExported")


async def test_change_orders_follow_their_commitment_and_the_erp_limits_hold(
    exporting: Settings,
) -> None:
    project = project_export("prj-a7", "RMO-A7", company=COMPANY)
    commitment = commitment_export("sc-a7", "prj-a7", number="SC-A7", company=COMPANY)
    await publish_events(exporting, EXPORTS, [project])
    await _result(exporting, project["payload"]["export_id"], "ItemExported")
    await publish_events(exporting, EXPORTS, [commitment])
    await _result(exporting, commitment["payload"]["export_id"], "ItemExported")

    def cco(item_id: str, commitment_id: str, **kw: str) -> dict[str, object]:
        submitted = se.cco_submitted(item_id, **kw)
        submitted["payload"]["snapshot"]["commitment"]["id"] = commitment_id
        return export_requested(submitted, {"change_order_date": "2026-11-21"}, company=COMPANY)

    def pcco(item_id: str, code: str) -> dict[str, object]:
        submitted = se.pcco_submitted(item_id, billing_item_code=code)
        submitted["payload"]["project"] = {"id": "prj-a7", "name": "Riverside Medical Office"}
        return export_requested(submitted, {"transaction_date": "2026-11-22"}, company=COMPANY)

    good_cco, good_pcco = cco("cco-a7", "sc-a7"), pcco("pcco-a7", "BI-010")
    long_title = cco("cco-a8", "sc-a7", title="A title far longer than thirty characters")
    orphan = cco("cco-a9", "sc-never-exported")
    long_code = pcco("pcco-a8", "BILLING-ITEM-11")
    await publish_events(exporting, EXPORTS, [good_cco, good_pcco, long_title, orphan, long_code])

    def export_id(event: dict[str, object]) -> str:
        return str(event["payload"]["export_id"])  # type: ignore[index]

    assert (
        await _result(exporting, export_id(good_cco), "ItemExported")
    ).payload.erp_reference == "SC-A7/CCO-001"  # type: ignore[attr-defined]
    assert (
        await _result(exporting, export_id(good_pcco), "ItemExported")
    ).payload.erp_reference == "RMO-A7/PCCO-001"  # type: ignore[attr-defined]
    for refused, words in (
        (long_title, "The change order title 'A title far longer than thirty characters' is 41"),
        (orphan, "Commitment SC-200 (sc-never-exported) is not in Spectrum yet"),
        (long_code, "The billing item code 'BILLING-ITEM-11' is 15 characters; Spectrum takes"),
    ):
        failed = await _result(exporting, export_id(refused), "ExportAttemptFailed")
        assert words in failed.payload.error_message  # type: ignore[attr-defined]
    assert erp_rows(
        exporting,
        "SELECT phase_code, amount FROM spectrum.change_order_lines"
        " WHERE company_id = %s AND commitment_id = 'SC-A7'",
        COMPANY,
    ) == [("03-300", Decimal("12500.0000"))]
