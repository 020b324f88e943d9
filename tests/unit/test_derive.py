"""The one derived-event builder: envelope copied from the cause, correlation kept, ids pinned.

Derived ids are part of the pipeline's memory: de-duplication downstream and replays compare
them, so every id below is checked against the formula it had before the builder existed.
"""

from __future__ import annotations

import datetime as dt
import uuid

from consumers.dev import samples as se
from consumers.export import events as export_events
from consumers.export.port import ExportOutcome
from pipeline.rules import derive
from pipeline.rules.refusals import refusal
from pipeline.rules.summary import summary_id
from tests.support.events import commitment_export, export_model
from tests.support.rules import event
from topics.events import ItemStatusChanged
from topics.payloads import SYSTEM_ACTOR, ItemStatus
from topics.record import Record

PROCESSOR_NS = uuid.UUID("0c4f6a8e-51d2-4c1b-9a7e-7e3d2b9f4a10")
EXPORTER_NS = uuid.UUID("0b7f9d64-3c1e-4f0a-9a3e-5d1c2b8e7f41")
REFUSAL_NS = uuid.UUID("6f1c3d2e-9a51-4a57-8a0e-2d4b8f0c1e77")
AT = dt.datetime(2026, 11, 21, 10, 0, tzinfo=dt.UTC)


def test_a_derived_event_copies_the_cause_and_keeps_its_correlation() -> None:
    cause = event({**se.project_submitted("prj-7"), "correlation_id": "chain-1"})
    status = derive.status_changed(
        cause, ItemStatus.READY_TO_EXPORT, None, 1, submission=cause, sequence=1
    )
    assert isinstance(status, ItemStatusChanged)
    assert (status.company_id, status.item, status.actor) == (
        cause.company_id,
        cause.item,
        cause.actor,
    )
    assert status.occurred_at == cause.occurred_at
    assert status.correlation_id == "chain-1"
    assert status.event_id == uuid.uuid5(PROCESSOR_NS, f"{cause.event_id}/status")


def test_an_input_without_correlation_starts_a_chain_named_by_its_own_id() -> None:
    raw = se.project_submitted("prj-8")
    raw.pop("correlation_id", None)
    cause = event(raw)
    status = derive.status_changed(
        cause, ItemStatus.READY_TO_EXPORT, None, 1, submission=cause, sequence=1
    )
    assert status.correlation_id == str(cause.event_id)


def test_processor_ids_keep_their_formulas() -> None:
    assert derive.export_id("c:project:p", 3) == str(
        uuid.uuid5(PROCESSOR_NS, "c:project:p/v3/export")
    )
    day = dt.date(2026, 11, 21)
    assert summary_id("c", "a@x.com", day) == uuid.uuid5(
        PROCESSOR_NS, "c/a@x.com/2026-11-21/daily-summary"
    )


def test_exporter_ids_keep_their_formulas_and_the_system_is_the_actor() -> None:
    request = export_model(commitment_export("sc-1", "prj-1", export_id="exp-1"))
    done = export_events.item_exported(request, ExportOutcome("exp-1", 1, True, AT, "SC-1"))
    assert done.event_id == uuid.uuid5(EXPORTER_NS, "exp-1/exported")
    assert done.actor == SYSTEM_ACTOR
    assert done.occurred_at == AT
    assert done.correlation_id == request.correlation_id  # as it is, even when None
    failed = ExportOutcome("exp-1", 2, False, AT, error_code="x", error_message="y")
    assert export_events.attempt_failed(request, failed).event_id == uuid.uuid5(
        EXPORTER_NS, "exp-1/2/attempt-failed"
    )
    notices = export_events.failure_notices(request, failed).notices
    assert [n.event_id for n in notices] == [
        uuid.uuid5(EXPORTER_NS, f"exp-1/2/notice/{n.payload.to}") for n in notices
    ]


def test_dead_letter_ids_keep_their_formula() -> None:
    dead = refusal(Record("erp.submissions", 2, 17, None, b"{"), "decode", "bad json")
    assert dead.event_id == uuid.uuid5(REFUSAL_NS, "erp.submissions/2/17/decode")
