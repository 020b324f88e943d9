"""The console's on-the-spot refusals are the processor's own: same stage, same words."""

from __future__ import annotations

from typing import Any

import pytest

from consumers.dev import samples as se
from pipeline.rules.precheck import judge_decision
from tests.support.rules import directory, event, run

CCO = ("commitment_change_order", "cco-300")
PROJECT = ("project", "prj-100")


def _both(history: list[Any], decision: Any, **company: Any) -> tuple[Any, Any]:
    """(the processor's refusal of `decision` after `history`, the precheck's)."""
    d = directory(**company)
    state, _ = run(history, d)
    assert state is not None and state.status is not None
    _, (outcome,) = run([decision], d, state)
    (dead,) = outcome.events
    judged = judge_decision(decision, state.status, state.version, d)
    assert judged is not None
    return (dead.payload.stage, dead.payload.error), (judged.stage, judged.reason)


CASES = {
    "read-only user": (
        [event(se.project_submitted(), 1)],
        event(se.accepted(*PROJECT, actor=se.VIEWER, erp_job_id="J1", job_template="T"), 2),
        {},
    ),
    "stale version": (
        [
            event(se.project_submitted(), 1),
            event(se.rejected(*PROJECT, "no"), 2),
            event(se.project_submitted(), 3),
        ],
        event(se.accepted(*PROJECT, erp_job_id="J1", job_template="T", submission_version=1), 4),
        {},
    ),
    "not allowed from rejected": (
        [event(se.project_submitted(), 1), event(se.rejected(*PROJECT, "no"), 2)],
        event(se.accepted(*PROJECT, erp_job_id="J1", job_template="T"), 3),
        {},
    ),
    "custom CCO id missing": (
        [event(se.cco_submitted(), 1)],
        event(se.accepted(*CCO, change_order_date="2026-11-21"), 2),
        {"custom_cco_id_enabled": True},
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_the_precheck_refuses_as_the_processor_does(case: str) -> None:
    history, decision, company = CASES[case]
    processor, console = _both(history, decision, **company)
    assert console == processor


def test_what_the_processor_applies_passes() -> None:
    d = directory()
    state, _ = run([event(se.project_submitted(), 1)], d)
    assert state is not None
    accept = event(se.accepted(*PROJECT, erp_job_id="J1", job_template="T"), 2)
    assert judge_decision(accept, state.status, state.version, d) is None
