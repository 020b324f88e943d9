"""Values at the edges of the contract's field rules, for the models and the JSON Schemas alike."""

from __future__ import annotations

import copy
from typing import Any, NamedTuple


def _domain(length: int) -> str:
    """A valid domain name of exactly `length` characters, ending in `.example`."""
    labels, left = [], length - len(".example")
    while left > 0:
        size = min(63, left)
        if 0 < left - size < 2:  # leave room for one more label and its dot
            size -= 2
        labels.append("d" * size)
        left -= size + 1
    return ".".join(labels) + ".example"


#: 254 characters (275 UTF-8 octets) that lowercasing makes 275 characters: `İ` (U+0130)
#: lowercases to two code points. The exporter addressed notices to the lowercase form.
LONGER_ONCE_LOWERCASED = "\u0130" * 21 + "@" + _domain(232)
#: 254 UTF-8 octets as given, 275 once lowercased: only the lowercase form is too long.
OCTETS_GROW_ONCE_LOWERCASED = "\u0130" * 21 + "@" + _domain(211)
#: An address the old pattern let through but `email.headerregistry.Address` cannot parse.
UNWRITABLE_IN_A_HEADER = "ana)@acme.example"


class Case(NamedTuple):
    """A value at `path` of a valid `event_type` example; `schema`: the JSON Schema says so too."""

    event_type: str
    path: str
    value: Any
    schema: bool = True


REFUSED = [
    # control characters (Unicode Cc), on one line and over several
    Case("ItemSubmitted", "payload.title", "Steel\x00frame"),
    Case("ItemSubmitted", "payload.title", "Steel\nframe"),
    Case("ItemSubmitted", "payload.title", "Steel\x7fframe"),
    Case("ItemSubmitted", "payload.title", "Steel\x85frame"),
    Case("ItemSubmitted", "payload.number", "SC\t200"),
    Case("ItemSubmitted", "item.id", "sc\x00200"),
    Case("ItemSubmitted", "item.id", "\ufeffsc-200"),  # ECMA-262's `\s` holds U+FEFF
    Case("ItemSubmitted", "actor.user_id", "u\x01pat"),
    Case("ItemSubmitted", "actor.name", "Pat\r\nBcc: x@acme.example"),
    Case("ItemSubmitted", "correlation_id", "corr\x00"),
    Case("ItemSubmitted", "payload.snapshot.vendor.name", "Lone\x1bStar"),
    Case("ItemSubmitted", "payload.snapshot.description", "Slab\x00"),
    Case("ItemSubmitted", "payload.snapshot.line_items.0.description", "Concrete\x0b"),
    Case("ItemRejected", "payload.reason", "Expired\x00"),
    Case("ItemAccepted", "payload.erp_job_id", "RMO\x00100"),
    Case("ApproverUpdated", "payload.name", "Ana\x00"),
    Case("ExportFailed", "payload.error_message", "Vendor\x00V9"),
    Case("ItemExported", "payload.erp_reference", "SC-200\n"),
    # a lone surrogate (no UTF-8 can carry it): the models refuse it, a pattern cannot say it
    Case("ItemSubmitted", "payload.title", "Steel \ud800", schema=False),
    # e-mail addresses
    Case("ApproverUpdated", "payload.email", "ana(b)@acme.example"),
    Case("ApproverUpdated", "payload.email", "ana[b]@acme.example"),
    Case("ApproverUpdated", "payload.email", "ana\\b@acme.example"),
    Case("ApproverUpdated", "payload.email", "ana\x00@acme.example"),
    Case("ApproverUpdated", "payload.email", '"ana b"@acme.example'),
    Case("ApproverUpdated", "payload.email", "ana@[127.0.0.1]"),
    Case("ApproverUpdated", "payload.email", "Ana <ana@acme.example>"),
    Case("ApproverUpdated", "payload.email", "ana..b@acme.example", schema=False),
    Case("ApproverUpdated", "payload.email", ".ana@acme.example", schema=False),
    Case("ApproverUpdated", "payload.email", "ana@acme..example", schema=False),
    Case("ApproverUpdated", "payload.email", "ana@acme.test", schema=False),
    Case("ApproverUpdated", "payload.email", LONGER_ONCE_LOWERCASED, schema=False),
    Case("ApproverUpdated", "payload.email", OCTETS_GROW_ONCE_LOWERCASED, schema=False),
    Case("ItemSubmitted", "actor.email", LONGER_ONCE_LOWERCASED, schema=False),
    # RFC 5321: at most 64 octets before the @ (email-validator counts characters, if at all)
    Case("ApproverUpdated", "payload.email", "a" * 65 + "@acme.example", schema=False),
    Case("ApproverUpdated", "payload.email", "\u0130" * 60 + "@acme.example", schema=False),
    Case("ApproverUpdated", "payload.email", "\u0130" * 22 + "@acme.example", schema=False),
    Case("RejectionNotice", "payload.to", UNWRITABLE_IN_A_HEADER),
    Case("RejectionNotice", "payload.rejected_by.email", UNWRITABLE_IN_A_HEADER),
    # integers past the PostgreSQL columns they land in
    Case("ItemRejected", "payload.submission_version", 2**31),
    Case("ItemStatusChanged", "payload.submission_version", 2**31),
    Case("ExportRequested", "payload.attempt", 2**31),
    Case("ExportFailed", "payload.source.partition", 2**31),
    Case("ExportFailed", "payload.source.offset", 2**63),
    # timestamps and dates
    Case("ItemSubmitted", "occurred_at", "0001-01-01T00:00:00+01:00"),  # overflows in UTC
    Case("ItemSubmitted", "occurred_at", "9999-12-31T23:59:59-01:00", schema=False),  # too
    Case("ItemSubmitted", "occurred_at", "1899-12-31T23:59:59Z"),
    Case("ItemSubmitted", "occurred_at", "1900-01-01T12:00:00Z", schema=False),
    Case("ItemSubmitted", "occurred_at", "9999-12-31T00:00:00Z", schema=False),
    Case("ItemSubmitted", "occurred_at", 1763719200),  # taken as Unix time before
    Case("ItemExported", "payload.exported_at", "0001-01-01T00:00:00Z"),
    Case("DailySummary", "payload.items.0.submitted_at", "1850-01-01T00:00:00Z"),
    Case("DailySummary", "payload.date", "1899-12-31"),
    Case("DailySummary", "payload.date", "0001-01-01"),
    Case("DailySummary", "payload.date", 20261121),
]

ACCEPTED = [
    Case("ItemRejected", "payload.reason", "Line 1:\r\n\tcost code wrong"),
    Case("ItemSubmitted", "payload.snapshot.description", "Foundations\nand slab"),
    Case("ItemSubmitted", "payload.title", "Steel\u2028frame"),  # a separator, not a control
    Case("ApproverUpdated", "payload.email", "jos\u00e9@acme.example"),
    Case("ApproverUpdated", "payload.email", "ana@acm\u00e9.example"),
    Case("ApproverUpdated", "payload.email", "Ana.Approver+erp@ACME.example"),
    Case("ItemSubmitted", "actor.email", "erp-pipeline@system.invalid"),  # the system actor
    Case("ItemSubmitted", "occurred_at", "1900-01-02T00:00:00Z"),
    Case("ItemSubmitted", "occurred_at", "1900-01-01T23:00:00-01:00"),
    Case("ItemSubmitted", "occurred_at", "9999-12-30T23:59:59Z"),
    Case("ItemSubmitted", "occurred_at", "9999-12-31T09:00:00+10:00"),
    Case("ItemRejected", "payload.submission_version", 2**31 - 1),
    Case("ExportFailed", "payload.source.offset", 2**63 - 1),
    Case("DailySummary", "payload.date", "9999-12-31"),
    Case("DailySummary", "payload.date", "1900-01-01"),
]


def with_value(event: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of `event` with `value` at the dotted `path` (list indexes are numbers)."""
    changed = copy.deepcopy(event)
    *parents, leaf = path.split(".")
    target: Any = changed
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    target[leaf] = value
    return changed


def value_at(event: dict[str, Any], path: str) -> Any:
    """The value at the dotted `path` of `event`."""
    target: Any = event
    for part in path.split("."):
        target = target[int(part)] if isinstance(target, list) else target[part]
    return target


def case_id(case: Case) -> str:
    """A short readable test id."""
    return f"{case.event_type}.{case.path}={case.value!r}"[:80]
