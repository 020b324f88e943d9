"""`replay --verify`: the rebuilt items against the read model and the latest erp.status."""

from __future__ import annotations

from dataclasses import dataclass, replace
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
    """What one source says about an item: status, submission version, ERP reference, and the
    sequence of its last status change (None where it was written before sequences)."""

    status: str | None
    version: int | None
    erp_reference: str | None
    sequence: int | None = None

    def describe(self) -> str:
        return (
            f"status={self.status} version={self.version} erp_reference={self.erp_reference}"
            f" sequence={self.sequence}"
        )

    def agrees(self, other: Seen) -> bool:
        """Whether `other` says the same. The sequence is shown, not compared: items the
        pipeline knew before sequences existed were numbered live from then on, while the
        replay numbers them from their first event."""
        return replace(self, sequence=None) == replace(other, sequence=None)


def expected(state: ItemState) -> Seen:
    """What the read model and erp.status should say about a rebuilt item."""
    status = state.status.value if state.status else None
    reference = state.erp_reference if state.status is ItemStatus.SYNCED else None
    return Seen(status, state.version, reference, state.sequence or None)


def differences(rebuilt: dict[str, ItemState], sources: dict[str, dict[str, Seen]]) -> list[str]:
    """One line per item and source that disagrees with the rebuilt state, sorted."""
    wanted = {key: expected(state) for key, state in rebuilt.items() if state.status is not None}
    lines = []
    for source, seen in sorted(sources.items()):
        for key in sorted(set(wanted) | set(seen)):
            mine, theirs = wanted.get(key), seen.get(key)
            if mine is not None and theirs is not None and mine.agrees(theirs):
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
        row["key"]: Seen(
            row["status"], row["submission_version"], row["erp_reference"], row["sequence"]
        )
        for row in rows
        if _matches(row["key"], company, item)
    }


async def latest_status(
    settings: Settings, company: str | None, item: str | None
) -> dict[str, Seen]:
    """The last `ItemStatusChanged` per item on erp.status: of highest sequence, and where
    none has one (written before sequences), of highest offset."""
    latest: dict[str, Seen] = {}
    ranks: dict[str, tuple[int, int]] = {}
    records: list[Any] = await read_all(settings, STATUS)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        try:
            event = decode_record(Record.of(record), STATUS)
        except ContractError:
            continue
        key = event.item_key
        if not _matches(key, company, item):
            continue
        p = event.payload
        rank = (1, p.sequence) if p.sequence is not None else (0, record.offset)
        if key in ranks and rank < ranks[key]:
            continue  # an earlier change published again (a redelivered outbox)
        ranks[key] = rank
        latest[key] = Seen(p.status.value, p.submission_version, p.erp_reference, p.sequence)
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
