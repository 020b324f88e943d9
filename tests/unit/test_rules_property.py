"""Random event sequences never crash the rules, never lose an item, and are deterministic."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.dev import samples as se
from pipeline.rules.derive import export_id
from pipeline.rules.engine import react
from pipeline.rules.state import ItemState
from tests.support.rules import directory, event, incoming

ITEMS = [("project", "prj-100"), ("commitment", "sc-200")]
KEY = {item: f"{se.COMPANY}:{item[0]}:{item[1]}" for item in ITEMS}


def _pool() -> list[object]:
    events: list[object] = []
    for item in ITEMS:
        project = item[0] == "project"
        submitted = se.project_submitted() if project else se.commitment_submitted()
        fields = {"erp_job_id": "J", "job_template": "T"} if project else {}
        for minute in range(3):
            events.append(event(submitted, minute))
            events.append(event(se.retrieved(*item), minute))
            events.append(event(se.accepted(*item, **fields), minute))
            versioned = se.accepted(*item, submission_version=minute + 1, **fields)
            events.append(event(versioned, minute))
            events.append(event(se.accepted(*item, actor=se.VIEWER, **fields), minute))
            events.append(
                event(
                    se.rejected(
                        *item,
                        "no",
                    ),
                    minute,
                )
            )
            events.append(
                event(se.envelope("ExportRetryRequested", item=item, actor=se.APPROVER), minute)
            )
            eid = export_id(KEY[item], minute + 1)
            events.append(
                event(
                    se.envelope(
                        "ItemExported",
                        item=item,
                        export_id=eid,
                        erp_reference="R",
                        exported_at="2026-11-21T16:00:00Z",
                    ),
                    minute,
                )
            )
            for retryable in (True, False):
                events.append(
                    event(
                        se.envelope(
                            "ExportAttemptFailed",
                            item=item,
                            export_id=eid,
                            attempt=1,
                            retryable=retryable,
                            error_code="E",
                            error_message="m",
                        ),
                        minute,
                    )
                )
    return events


POOL = _pool()
D = directory()


def _play(indexes: list[int]) -> tuple[dict[str, ItemState], list[str]]:
    states: dict[str, ItemState] = {}
    published: list[str] = []
    for offset, index in enumerate(indexes):
        e = POOL[index]
        inc = incoming(e)  # type: ignore[arg-type]
        inc = type(inc)(
            inc.event, type(inc.record)("erp.x", 0, offset, inc.record.key, inc.record.value)
        )
        key = inc.event.item_key
        before = states.get(key)
        outcome = react(before, inc, D)
        if outcome.state is not None:
            states[key] = outcome.state
        if before is not None and before.status is not None:
            assert key in states and states[key].status is not None  # never lost
        published += [x.model_dump_json() for x in outcome.events]
    return states, published


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(POOL) - 1), max_size=40))
def test_random_sequences(indexes: list[int]) -> None:
    first = _play(indexes)
    second = _play(indexes)
    assert first[1] == second[1]
    assert {k: v.model_dump_json() for k, v in first[0].items()} == {
        k: v.model_dump_json() for k, v in second[0].items()
    }
