"""An item as its page shows it: current row, snapshot, what changed, history, refusals."""

from __future__ import annotations

from typing import Any

from consumers.readmodel import queries


def flatten(value: Any, path: str = "") -> dict[str, Any]:
    """A JSON value as `{path: leaf}` (`line_items[li-1].amount`: list items by their `id`)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(flatten(inner, f"{path}.{key}" if path else str(key)))
        return out
    if isinstance(value, list):
        out = {}
        for index, inner in enumerate(value):
            name = inner.get("id", index) if isinstance(inner, dict) else index
            out.update(flatten(inner, f"{path}[{name}]"))
        return out
    return {path: value}


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """What differs between two submissions' payloads: rows of field, before, after."""
    old, new = flatten(before), flatten(after)
    return [
        {"field": field, "before": old.get(field), "after": new.get(field)}
        for field in sorted(old.keys() | new.keys())
        if old.get(field) != new.get(field)
    ]


def snapshot_and_changes(
    database_url: str, company_id: str, item_type: str, item_id: str, version: int
) -> dict[str, Any]:
    """The submitted payload of `version` (None when not caught yet) and, when an earlier
    version was turned back (rejected or retrieved), what changed since the latest such one.

    Raises `ReadModelUnavailable`."""
    sent = queries.submissions(database_url, company_id, item_type, item_id)
    by_version = {row["version"]: row for row in sent if row["version"] is not None}
    current = by_version.get(version)
    previous = max((v for v in by_version if v < version), default=None)
    return {
        "submitted": current["payload"] if current else None,
        "previous_version": previous,
        "changes": (
            changes(by_version[previous]["payload"], current["payload"])
            if current is not None and previous is not None
            else []
        ),
    }
