"""Last in the system suite: `replay --verify` agrees with live for every company the suite ran.

Runs after the flood, the chaos run, the database outage and the fuzz test (files run in name
order): items killed mid-way, redelivered, re-routed, held, refused and poisoned must all
replay to what the read model and erp.status say. Not the fuzz test's hostile company: its
records include valid status changes written straight to erp.status, which only the pipeline
may write (see the ACL recipes), so the read model rightly holds what no input explains.
"""

from __future__ import annotations

import pytest

from tests.support import system_invariants as invariants
from tests.support.system import System


@pytest.mark.parametrize("company", ["sys-flood", "sys-chaos", "sys-db", "sys-fuzz"])
def test_replay_verify_agrees_with_live_after_the_suite(system: System, company: str) -> None:
    invariants.replay_verify(system, company)
