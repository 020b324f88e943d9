"""The exporter in batches against the real broker and the reference ERP: one transaction per
batch, a failing export leaving the others written, a stop mid-batch redelivering no twice."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from consumers.export.port import ErpError, ExportOutcome, PermanentErpError
from consumers.export.spectrum.adapter import SpectrumErp
from consumers.export.worker import serve
from consumers.worker.runtime import Runtime
from pipeline.settings import Settings
from tests.support.db import erp_rows, seeded_company
from tests.support.events import commitment_export, project_export
from tests.support.kafka import events_of, isolated, publish_events, records_until
from tests.support.waiting import eventually_async
from topics.events import ExportRequested
from topics.payloads import KafkaSource
from topics.specs import EXPORT_RESULTS, EXPORTS

Requests = Sequence[tuple[ExportRequested, KafkaSource]]


def _ledger(settings: Settings, company: str) -> list[tuple[Any, ...]]:
    """(export_id, outcome, recorded_at) per ledger row of `company`; `recorded_at` defaults to
    `now()`, the start of the transaction that wrote the row: one value per transaction."""
    return erp_rows(
        settings,
        "SELECT export_id, outcome, recorded_at FROM exporter.export_ledger WHERE company_id = %s",
        company,
    )


def _jobs(settings: Settings, company: str) -> list[tuple[Any, ...]]:
    return erp_rows(
        settings,
        "SELECT count(*), count(DISTINCT upstream_project_id) FROM spectrum.jobs"
        " WHERE company_id = %s",
        company,
    )


class CountingErp(SpectrumErp):
    """The reference ERP, counting the calls the exporter makes."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.batches: list[int] = []
        self.singles = 0

    async def export_batch(self, requests: Requests) -> list[ExportOutcome | ErpError | None]:
        self.batches.append(len(requests))
        return await super().export_batch(requests)

    async def export(self, request: ExportRequested, source: KafkaSource) -> ExportOutcome:
        self.singles += 1
        return await super().export(request, source)


class StoppingErp(SpectrumErp):
    """Commits its first batch, then never returns: the exporter stops before any result."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.committed = asyncio.Event()

    async def export_batch(self, requests: Requests) -> list[ExportOutcome | ErpError | None]:
        await super().export_batch(requests)
        self.committed.set()
        await asyncio.Event().wait()  # cancelled when the exporter stops
        raise AssertionError("unreachable")


def _source(n: int) -> KafkaSource:
    return KafkaSource(topic="erp.exports", partition=0, offset=n, key=None)


async def test_a_batch_is_one_transaction_and_a_failing_export_keeps_the_others(
    settings: Settings,
) -> None:
    company = "acme-batch-port"
    seeded_company(settings, company)
    good = [project_export(f"prj-b{n}", f"B{n:04d}", company=company) for n in range(20)]
    bad = commitment_export("sc-b1", "prj-b0", vendor="V7777", number="SC-B1", company=company)
    later = commitment_export("sc-b1", "prj-b0", vendor="V1001", number="SC-B1", company=company)
    later["payload"]["attempt"] = 2
    batch = [*good[:10], bad, *good[10:], later]
    requests = [(ExportRequested.model_validate(e), _source(n)) for n, e in enumerate(batch)]
    erp = SpectrumErp(settings.require_erp_database_url())
    try:
        results = await erp.export_batch(requests)
    finally:
        await erp.close()

    assert isinstance(results[10], PermanentErpError)  # the unknown vendor
    assert results[-1] is None  # the same item's next export waits behind the failure
    exported = [r for r in results if isinstance(r, ExportOutcome)]
    assert len(exported) == len(good) and all(r.exported for r in exported)
    ledger = _ledger(settings, company)
    assert {row[0] for row in ledger} == {e["payload"]["export_id"] for e in good}
    assert len({row[2] for row in ledger}) == 1  # every row of one transaction
    assert _jobs(settings, company) == [(len(good), len(good))]
    assert erp_rows(
        settings, "SELECT count(*) FROM spectrum.commitments WHERE company_id = %s", company
    ) == [(0,)]


async def test_the_exporter_writes_each_fetched_batch_in_one_transaction(
    settings: Settings,
) -> None:
    company, items = "acme-batch-worker", 60
    mine = await isolated(settings, "batch")
    seeded_company(mine, company)
    exports = [project_export(f"prj-w{n}", f"W{n:04d}", company=company) for n in range(items)]
    await publish_events(mine, EXPORTS, exports)  # all waiting before the exporter starts
    erp = CountingErp(mine.require_erp_database_url())
    stop = asyncio.Event()
    task = asyncio.create_task(serve(Runtime.local(mine, stop), erp=erp))
    try:
        await eventually_async(
            lambda: len(_ledger(mine, company)) >= items, timeout=60, message="all exported"
        )
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)

    transactions = {row[2] for row in _ledger(mine, company)}
    assert erp.singles == 0
    assert sum(erp.batches) == items
    assert len(transactions) == len(erp.batches) < items
    assert _jobs(mine, company) == [(items, items)]


async def test_a_stop_after_a_batch_committed_redelivers_it_without_exporting_twice(
    settings: Settings,
) -> None:
    company, items = "acme-batch-stop", 30
    mine = await isolated(settings, "batchstop")
    seeded_company(mine, company)
    exports = [project_export(f"prj-s{n}", f"S{n:04d}", company=company) for n in range(items)]
    await publish_events(mine, EXPORTS, exports)
    stopping = StoppingErp(mine.require_erp_database_url())
    stop = asyncio.Event()
    task = asyncio.create_task(serve(Runtime.local(mine, stop), erp=stopping))
    try:
        await eventually_async(
            stopping.committed.is_set, timeout=60, message="the first batch committed"
        )
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    first = _ledger(mine, company)
    assert first, "the first batch wrote its exports"
    assert await records_until(mine, EXPORT_RESULTS, lambda rs: True, timeout=1) == []

    erp = CountingErp(mine.require_erp_database_url())
    stop = asyncio.Event()
    task = asyncio.create_task(serve(Runtime.local(mine, stop), erp=erp))
    try:
        results = events_of(
            await records_until(
                mine,
                EXPORT_RESULTS,
                lambda rs: (
                    len({e.payload.export_id for e in events_of(rs, EXPORT_RESULTS)}) >= items
                ),
                timeout=60,
            ),
            EXPORT_RESULTS,
        )
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)

    assert _jobs(mine, company) == [(items, items)]
    ledger = _ledger(mine, company)
    # the first batch's rows were found again, never written a second time
    assert {row for row in ledger if row[0] in {r[0] for r in first}} == set(first)
    assert {e.event_type for e in results} == {"ItemExported"}
    assert len({e.event_id for e in results}) == items
    assert {e.payload.export_id for e in results} == {e["payload"]["export_id"] for e in exports}
