"""The pipeline's PostgreSQL goes away mid-run: workers wait, reconnect, lose and double nothing.

Workers reach PostgreSQL through a TCP proxy; cutting it drops every open connection and refuses
new ones, which works the same for the embedded server and an external DATABASE_URL.
"""

from __future__ import annotations

import time

import pytest

from tests.support import system_invariants as invariants
from tests.support.db import statuses
from tests.support.kafka import publish_all
from tests.support.system import System, env_flag
from tests.support.system_scripts import Script, first_phase, prepare_company, scripted
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(300)

COMPANY = "sys-db"
ITEMS = env_flag("SYSTEM_DB_ITEMS", 150)
#: How long PostgreSQL stays unreachable (seconds).
OUTAGE_S = float(env_flag("SYSTEM_DB_OUTAGE_S", 8))


def test_workers_ride_out_a_database_outage(system: System) -> None:
    prepare_company(system, COMPANY)
    items = [
        i
        for i in scripted(COMPANY, ITEMS)
        if i.script in (Script.ACCEPT, Script.REJECT, Script.RETRIEVE)
    ]
    pids = system.pids()
    publish_all(system.settings, [r for item in items for r in first_phase(item)])
    eventually(
        lambda: len(statuses(system.settings, COMPANY)) > len(items) // 5,
        timeout=60,
        interval=0.5,
        message="work under way",
    )
    system.loop.call(system.proxy.cut())
    time.sleep(OUTAGE_S)  # the outage itself
    system.loop.call(system.proxy.start())
    eventually(
        lambda: invariants.final_statuses_reached(system, items),
        timeout=150,
        interval=0.5,
        message=lambda: invariants.lagging(system, items),
    )
    invariants.check_statuses(system, items)
    invariants.check_erp(system, items)
    invariants.check_mail(system, items)
    assert system.pids() == pids and system.exited() == {}, "a worker restarted or exited"
