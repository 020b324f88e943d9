"""`replay --verify`: the rebuilt items against the read model and the latest erp.status."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consumers.readmodel import queries
from pipeline.kafka import read_all
from pipeline.rules.state import ItemState
from pipeline.settings import Settings
from topics import ContractError
from topics.payloads import ItemStatus
from topics.record import Record, decode_record
from topics.specs import STATUS


@dataclass(frozen=True)
class Seen:
    """What one source says about an item: status, submission version, ERP reference."""

    status: str | None
    version: int | None
    erp_reference: str | None

    def describe(self) -> str:
        return f"status={self.status} version={self.version} erp_reference={self.erp_reference}"


def expected(state: ItemState) -> Seen:
    """What the read model and erp.status should say about a rebuilt item."""
    status = state.status.value if state.status else None
    reference = state.erp_reference if state.status is ItemStatus.SYNCED else None
    return Seen(status, state.version, reference)


def differences(rebuilt: dict[str, ItemState], sources: dict[str, dict[str, Seen]]) -> list[str]:
    """One line per item and source that disagrees with the rebuilt state, sorted."""
    wanted = {key: expected(state) for key, state in rebuilt.items() if state.status is not None}
    lines = []
    for source, seen in sorted(sources.items()):
        for key in sorted(set(wanted) | set(seen)):
            mine, theirs = wanted.get(key), seen.get(key)
            if mine == theirs:
                continue
            lines.append(
                f"{key}: {source} has "
                f"{theirs.describe() if theirs else 'nothing'}, replay has "
                f"{mine.describe() if mine else 'nothing'}"
            )
    return lines


def _matches(key: str, company: str | None, item: str | None) -> bool:
    if item is not None:
        return key == item
    return company is None or key.startswith(f"{company}:")


def read_model(settings: Settings, company: str | None, item: str | None) -> dict[str, Seen]:
    """The `items` table, by item key."""
    rows = queries.current(settings.require_database_url(), company)
    return {
        row["key"]: Seen(row["status"], row["submission_version"], row["erp_reference"])
        for row in rows
        if _matches(row["key"], company, item)
    }


async def latest_status(
    settings: Settings, company: str | None, item: str | None
) -> dict[str, Seen]:
    """The `ItemStatusChanged` of highest offset per item on erp.status."""
    latest: dict[str, Seen] = {}
    records: list[Any] = await read_all(settings, STATUS)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        try:
            event = decode_record(Record.of(record), STATUS)
        except ContractError:
            continue
        key = event.item_key
        if _matches(key, company, item):
            p = event.payload
            latest[key] = Seen(p.status.value, p.submission_version, p.erp_reference)
    return latest


async def verify(
    settings: Settings, rebuilt: dict[str, ItemState], company: str | None, item: str | None
) -> list[str]:
    """Every difference between the rebuilt items and the read model / erp.status."""
    sources = {
        "read model": read_model(settings, company, item),
        "erp.status": await latest_status(settings, company, item),
    }
    return differences(rebuilt, sources)
