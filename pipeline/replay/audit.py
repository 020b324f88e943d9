"""The audit report: one row per decision and its outcome, totals, CSV / JSONL / table (pure)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import Counter
from dataclasses import asdict, dataclass, fields
from typing import Any

from pipeline.replay.entries import Entry
from pipeline.rules.state import ItemState
from topics.events import (
    ExportRetryRequested,
    ItemAccepted,
    ItemRejected,
    ItemRetrieved,
)

#: The decisions an audit reports, by the name the report gives them.
ACTIONS: dict[type, str] = {
    ItemAccepted: "accepted",
    ItemRejected: "rejected",
    ExportRetryRequested: "export_retry",
    ItemRetrieved: "retrieved",
}


@dataclass
class AuditRow:
    """Who decided what about which submission, when, why, and what came of it."""

    item: str
    item_type: str
    submission_version: int
    sent_by: str
    sent_at: str
    decision: str
    decided_by: str
    decided_at: str
    detail: str
    outcome: str = "held"
    refusal: str = ""
    status_after: str = ""
    export_id: str = ""
    attempt: int | None = None
    erp_reference: str = ""
    export_error: str = ""
    final_status: str = ""
    source: str = ""
    event_id: str = ""
    reported: bool = True

    def sort_key(self) -> tuple[str, str, str]:
        """Report order: item, then decision time, then where it was read (all deterministic)."""
        return (self.item, self.decided_at, self.source)


COLUMNS = [f.name for f in fields(AuditRow) if f.name != "reported"]


def utc(at: dt.datetime) -> str:
    """A time as RFC 3339 in UTC, so that report rows sort and compare as text."""
    return at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _detail(event: Any) -> str:
    """The reason of a reject or retrieve, or the accept fields, as stable text."""
    payload = event.payload
    if isinstance(event, ItemAccepted):
        values = payload.model_dump(mode="json", exclude_none=True)
        values.pop("submission_version", None)
        return json.dumps(values, sort_keys=True, separators=(",", ":"))
    return str(getattr(payload, "reason", None) or "")


def row_for(entry: Entry, state: ItemState | None) -> AuditRow | None:
    """The row of a decision (None for events that are not decisions)."""
    event = entry.event
    action = ACTIONS.get(type(event))
    if action is None:
        return None
    sub = state.submission if state is not None else None
    record = entry.record
    version = getattr(getattr(event, "payload", None), "submission_version", None)
    return AuditRow(
        item=f"{event.company_id}:{event.item.type.value}:{event.item.id}",
        item_type=event.item.type.value,
        submission_version=version if isinstance(version, int) else (state.version if state else 0),
        sent_by=sub.actor.email if sub is not None else "",
        sent_at=utc(sub.occurred_at) if sub is not None else "",
        decision=action,
        decided_by=event.actor.email,
        decided_at=utc(event.occurred_at),
        detail=_detail(event),
        source=f"{record.topic.rsplit('.', 1)[-1]}:{record.partition}:{record.offset:012d}",
        event_id=str(event.event_id),
        reported=entry.reported,
    )


def ordered(rows: list[AuditRow]) -> list[AuditRow]:
    """Rows in report order."""
    return sorted(rows, key=AuditRow.sort_key)


def _values(row: AuditRow) -> dict[str, Any]:
    values = asdict(row)
    values.pop("reported")
    return values


def to_csv(rows: list[AuditRow]) -> str:
    """The rows as CSV with a header line (`\\n` line ends, so reports compare byte for byte)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in ordered(rows):
        writer.writerow(_values(row))
    return out.getvalue()


def to_jsonl(rows: list[AuditRow]) -> str:
    """The rows as one JSON object per line, keys sorted."""
    return "".join(json.dumps(_values(row), sort_keys=True) + "\n" for row in ordered(rows))


def totals(rows: list[AuditRow], final: dict[str, str]) -> dict[str, Counter[str]]:
    """Items per final status, and decisions per approver and outcome."""
    by_approver: Counter[str] = Counter(
        f"{row.decided_by} {row.decision} {row.outcome}" for row in rows
    )
    return {"status": Counter(final.values()), "approver": by_approver}


def _fit(value: Any, width: int) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def table(rows: list[AuditRow], columns: list[str], width: int = 40) -> str:
    """Rows as an aligned text table of `columns`, each cell cut to `width` characters."""
    cells = [[_fit(_values(row)[c], width) for c in columns] for row in ordered(rows)]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines) + "\n"
