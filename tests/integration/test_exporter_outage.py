"""An ERP outage: exports wait it out with backoff, resume, and nothing fails or doubles."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

from pipeline.settings import Settings
from tests.support.db import erp_rows, seeded_company
from tests.support.events import project_export
from tests.support.exporter import exporter_process
from tests.support.kafka import events_of, isolated, publish_events, records_until
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import eventually_async
from topics.specs import EXPORT_RESULTS, EXPORTS, FAILED_TO_EXPORT

COMPANY = "acme-outage"
#: How long the ERP stays unreachable (seconds).
OUTAGE_S = float(os.environ.get("EXPORTER_TEST_OUTAGE_S", "10"))
HALF = 300


def _exported(settings: Settings, prefix: str = "") -> int:
    return int(
        erp_rows(
            settings,
            "SELECT count(*) FROM exporter.export_ledger WHERE company_id = %s AND item_id LIKE %s",
            COMPANY,
            f"prj-o{prefix}%",
        )[0][0]
    )


async def test_exports_resume_after_an_erp_outage_without_failing_or_doubling(
    settings: Settings,
    worker_env: dict[str, str],
) -> None:
    mine = await isolated(settings, "outage")
    seeded_company(mine, COMPANY)
    proxy = TcpProxy(mine.require_erp_database_url())
    await proxy.start()
    before = [project_export(f"prj-o1-{n}", f"O1{n:04d}", company=COMPANY) for n in range(HALF)]
    during = [project_export(f"prj-o2-{n}", f"O2{n:04d}", company=COMPANY) for n in range(HALF)]
    await publish_events(mine, EXPORTS, before)
    process = exporter_process(
        worker_env,
        mine,
        ERP_DATABASE_URL=proxy.url,
        EXPORTER_RETRY_BASE_S="0.2",
        EXPORTER_RETRY_MAX_S="2",
        EXPORTER_MAX_ATTEMPTS="40",
        EXPORTER_TIMEOUT_S="5",
    )
    try:
        await eventually_async(
            lambda: _exported(mine) >= HALF // 3,
            timeout=60,
            interval=0.1,
            message="exports under way",
        )
        await proxy.cut()
        await publish_events(mine, EXPORTS, during)
        await asyncio.sleep(OUTAGE_S)  # the outage itself
        assert _exported(mine, "2-") == 0  # nothing got through a cut line
        await proxy.start()
        await eventually_async(
            lambda: _exported(mine) >= 2 * HALF,
            timeout=60,
            interval=0.1,
            message="all exported after the outage",
        )
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        with contextlib.suppress(AssertionError):
            await proxy.cut()

    assert erp_rows(
        mine,
        "SELECT count(*), count(DISTINCT upstream_project_id) FROM spectrum.jobs"
        " WHERE company_id = %s",
        COMPANY,
    ) == [(2 * HALF, 2 * HALF)]
    assert erp_rows(
        mine, "SELECT DISTINCT outcome FROM exporter.export_ledger WHERE company_id = %s", COMPANY
    ) == [("exported",)]
    results = events_of(
        await records_until(
            mine,
            EXPORT_RESULTS,
            lambda rs: (
                len({e.payload.export_id for e in events_of(rs, EXPORT_RESULTS)}) >= 2 * HALF
            ),
        ),
        EXPORT_RESULTS,
    )
    assert {e.event_type for e in results} == {"ItemExported"}
    assert await records_until(mine, FAILED_TO_EXPORT, lambda rs: True) == []
