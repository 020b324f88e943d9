"""Rebuilding every item's state from its topics with the processor's own rules (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pipeline.replay.audit import AuditRow, row_for, utc
from pipeline.replay.entries import Entry, merged
from pipeline.replay.verdicts import RecordedDirectory, Verdicts
from pipeline.rules.derive import derived_id
from pipeline.rules.engine import react, recorded_refusal
from pipeline.rules.machine import REACTIONS, trigger_of
from pipeline.rules.state import Incoming, ItemState
from topics.events import (
    ApproverUpdated,
    CompanySettingsUpdated,
    EventRefused,
    ExportAttemptFailed,
    ExportRequested,
    ItemExported,
    ItemStatusChanged,
)


@dataclass(repr=False)
class Rebuilt:
    """Every item's rebuilt state and the audit rows of its decisions."""

    states: dict[str, ItemState] = field(default_factory=dict)
    rows: list[AuditRow] = field(default_factory=list)
    events: int = 0

    def __repr__(self) -> str:
        # counts only: a full repr of every state takes seconds, and asyncio.run makes one
        # of the result of the task it ran (Python 3.11, when it restores its SIGINT handler)
        return f"Rebuilt({len(self.states)} states, {len(self.rows)} rows, {self.events} events)"


class Rebuild:
    """Applies directory events, then each item's events through `pipeline.rules.engine.react`.

    Who may act is not judged again: `verdicts` are the live processor's (see `verdicts`).
    """

    def __init__(self, verdicts: Verdicts | None = None) -> None:
        self.directory = RecordedDirectory(verdicts=verdicts or Verdicts())
        self.result = Rebuilt()

    def directory_event(self, event: ApproverUpdated | CompanySettingsUpdated) -> None:
        """Add a directory event (all of them go in before any item event)."""
        self.directory.apply(event)
        self.result.events += 1

    def item(self, key: str, streams: Iterable[list[Entry]]) -> None:
        """Replay one item's events, one list per topic, merged in the order the processor
        applied them (`entries.merged`), and record its decisions' outcomes."""
        state: ItemState | None = None

        def applies(entry: Entry) -> bool:
            status = state.status if state is not None else None
            return (status, trigger_of(entry.event)) in REACTIONS

        entries = merged(streams, applies)
        rows: dict[str, AuditRow] = {}
        by_status: dict[str, AuditRow] = {}
        by_export: dict[str, AuditRow] = {}
        exporting: AuditRow | None = None
        for entry in entries:
            self.result.events += 1
            row = row_for(entry, state)
            incoming = Incoming(entry.event, entry.record)
            recorded = self.directory.verdicts.of_record(entry.record)
            try:
                if recorded is not None:  # refused live: the same here, whatever the merge order
                    outcome = recorded_refusal(state, incoming, *recorded)
                else:  # live applied it, so what it wrote fitted: not measured again
                    outcome = react(state, incoming, self.directory, measured=False)
            except Exception as exc:  # the live processor dead-letters it and keeps the state
                if row is not None:
                    rows[row.event_id] = row
                    row.outcome = "refused"
                    row.refusal = f"business_rule: unexpected error: {type(exc).__name__}: {exc}"
                continue
            if outcome.duplicate:
                continue
            if row is not None:
                rows[row.event_id] = row
                by_status[str(derived_id(entry.event, "status"))] = row
                by_export[str(derived_id(entry.event, "export"))] = row
                row.outcome = "held"
            for derived in outcome.events:
                exporting = _link(derived, rows, by_status, by_export, exporting)
            answer = entry.event
            refused = any(isinstance(e, EventRefused) for e in outcome.events)
            if isinstance(answer, ItemExported | ExportAttemptFailed) and exporting and not refused:
                _export_answer(exporting, answer)
            if outcome.state is not None:
                state = outcome.state
        if state is not None:
            self.result.states[key] = state
        for row in rows.values():
            row.final_status = state.status.value if state and state.status else ""
            if row.reported:
                self.result.rows.append(row)


def _link(
    derived: object,
    rows: dict[str, AuditRow],
    by_status: dict[str, AuditRow],
    by_export: dict[str, AuditRow],
    exporting: AuditRow | None,
) -> AuditRow | None:
    """Attach what the rules derived to the decision that caused it; the row awaiting an
    export answer is returned."""
    if isinstance(derived, EventRefused):
        row = rows.get(derived.payload.refused_event_id or "")
        if row is not None:
            row.outcome = "refused"
            row.refusal = f"{derived.payload.stage.value}: {derived.payload.error}"
    elif isinstance(derived, ItemStatusChanged):
        row = by_status.get(str(derived.event_id))
        if row is not None:
            payload = derived.payload
            row.outcome = "applied"
            row.decided_by = derived.actor.email  # the decider as the directory names them
            row.status_after = payload.status.value
            row.submission_version = payload.submission_version
            if payload.sent_by is not None:
                row.sent_by = payload.sent_by.email
            row.sent_at = utc(payload.sent_at) if payload.sent_at else row.sent_at
    elif isinstance(derived, ExportRequested):
        row = by_export.get(str(derived.event_id))
        if row is not None:
            row.export_id = derived.payload.export_id
            row.attempt = derived.payload.attempt
            return row
    return exporting


def _export_answer(row: AuditRow, event: ItemExported | ExportAttemptFailed) -> None:
    """The ERP's answer to the export the decision of `row` requested."""
    if event.payload.export_id != row.export_id:
        return
    if isinstance(event, ItemExported):
        row.erp_reference = event.payload.erp_reference
    elif isinstance(event, ExportAttemptFailed) and not event.payload.retryable:
        row.export_error = f"{event.payload.error_code}: {event.payload.error_message}"
