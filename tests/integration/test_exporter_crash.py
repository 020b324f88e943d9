"""Exactly once through crashes: SIGKILL the exporter at random moments while it exports."""

from __future__ import annotations

import random
import signal
import time

from pipeline.settings import Settings
from tests.support.db import erp_rows, seeded_company
from tests.support.events import project_export
from tests.support.exporter import exporter_process
from tests.support.kafka import events_of, isolated, publish_events, records_until
from tests.support.waiting import eventually_async
from topics.specs import EXPORT_RESULTS, EXPORTS, FAILED_TO_EXPORT

COMPANY = "acme-crash"
ITEMS = 2000
KILLS = 3


def _exported(settings: Settings) -> int:
    return int(
        erp_rows(
            settings, "SELECT count(*) FROM exporter.export_ledger WHERE company_id = %s", COMPANY
        )[0][0]
    )


async def test_every_item_is_exported_exactly_once_across_sigkills(
    settings: Settings,
    worker_env: dict[str, str],
) -> None:
    mine = await isolated(settings, "crash")
    seeded_company(mine, COMPANY)
    exports = [project_export(f"prj-c{n}", f"C{n:05d}", company=COMPANY) for n in range(ITEMS)]
    await publish_events(mine, EXPORTS, exports)
    rng = random.Random()

    process = exporter_process(worker_env, mine)
    try:
        for kill in range(KILLS):
            # A random moment while exporting: after a random share of what is left is done.
            before = _exported(mine)
            target = before + rng.randint(1, max(1, (ITEMS - before) // (KILLS - kill + 1)))
            await eventually_async(
                lambda t=target: _exported(mine) >= t,
                timeout=45,
                interval=0.1,
                message=f"{target} exported",
            )
            time.sleep(rng.uniform(0, 0.05))
            process.send_signal(signal.SIGKILL)
            assert _exported(mine) < ITEMS, "the kill came after the work was done"
            process.wait(10)
            process = exporter_process(worker_env, mine)
        await eventually_async(
            lambda: _exported(mine) >= ITEMS,
            timeout=60,
            interval=0.1,
            message=f"all {ITEMS} exported",
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    jobs = erp_rows(
        mine,
        "SELECT count(*), count(DISTINCT upstream_project_id) FROM spectrum.jobs"
        " WHERE company_id = %s",
        COMPANY,
    )
    assert jobs == [(ITEMS, ITEMS)]
    ledger = dict(
        erp_rows(
            mine,
            "SELECT export_id, erp_reference FROM exporter.export_ledger"
            " WHERE company_id = %s AND outcome = 'exported'",
            COMPANY,
        )
    )
    assert set(ledger) == {e["payload"]["export_id"] for e in exports}
    results = events_of(
        await records_until(
            mine,
            EXPORT_RESULTS,
            lambda rs: len({e.payload.export_id for e in events_of(rs, EXPORT_RESULTS)}) >= ITEMS,
        ),
        EXPORT_RESULTS,
    )
    # Re-emitted results after a crash are the same result again, never a second export.
    assert {e.event_type for e in results} == {"ItemExported"}
    assert {e.payload.export_id: e.payload.erp_reference for e in results} == ledger
    assert len({e.event_id for e in results}) == ITEMS
    assert await records_until(mine, FAILED_TO_EXPORT, lambda rs: True) == []
