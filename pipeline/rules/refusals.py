"""Building `EventRefused` dead letters (pure; used by the processor and every consumer).

A dead letter is bounded by construction: its whole record (key, value, headers) fits in
`MAX_RECORD_BYTES`, so the broker takes it and `topics.decode` reads it back, whatever it
refuses. Its error is cut at `MESSAGE_CHARS` characters, the refused record's key at
`MAX_SOURCE_KEY_BYTES` (`Record.source`), and its copy of the value to the room left
(`raw_truncated`, `raw_bytes`). Its own key is the refused event's item key or a company id
taken from the refused key only when it is a valid one, so it is bounded too.
"""

from __future__ import annotations

import datetime as dt
import re

from pipeline.rules.derive import REFUSALS
from topics import ContractError, Envelope, raw_for_dead_letter, record_size
from topics.events import EventRefused
from topics.fields import EARLIEST, LATEST, printable
from topics.limits import MAX_RECORD_BYTES, MESSAGE_CHARS, truncate
from topics.payloads import SYSTEM_ACTOR, EventRefusedPayload, RefusalStage
from topics.record import Record

UNKNOWN_COMPANY = "_unknown"
#: A company id as the contract has it (`topics.fields.CompanyId`), ASCII only.
COMPANY_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}", re.ASCII)
#: The longest refused event id a dead letter quotes.
MAX_ID_CHARS = 128


def refusal(
    record: Record,
    stage: RefusalStage | str,
    error: str,
    *,
    event: Envelope | None = None,
    refused_event_id: str | None = None,
    now: dt.datetime | None = None,
) -> EventRefused:
    """An `EventRefused` for `record`, keeping its original bytes and coordinates.

    `occurred_at` is the refused event's own time when it was decodable (so replays are
    deterministic), else the record's broker timestamp, else `now`. The bytes are kept whole
    unless the dead letter would not fit in one record; then their start is (see the module).
    """
    stage = RefusalStage(stage)
    raw, encoding = raw_for_dead_letter(record.value)
    if event is not None:
        occurred_at = event.occurred_at
    else:
        occurred_at = _broker_time(record) or now or dt.datetime.now(dt.UTC)
    dead = EventRefused(
        # the same refusal of the same record gets the same id: a redelivered record does not
        # produce a second, different dead letter
        event_id=REFUSALS.id(record.topic, record.partition, record.offset, stage.value),
        occurred_at=occurred_at,
        company_id=event.company_id if event is not None else _company_from_key(record.text_key),
        item=event.item if event is not None else None,
        actor=event.actor if event is not None else SYSTEM_ACTOR,
        correlation_id=event.correlation_id if event is not None else None,
        payload=EventRefusedPayload(
            stage=stage,
            error=truncate(printable(error), MESSAGE_CHARS),
            source=record.source(),
            raw=raw,
            raw_encoding=encoding,
            refused_event_id=str(event.event_id) if event is not None else refused_event_id,
            refused_event_type=event.event_type if event is not None else None,
        ),
    )
    return _fitted(dead, record.value)


def _fitted(dead: EventRefused, value: bytes | None) -> EventRefused:
    """`dead` as it is when it fits in one record, else with the start of `value` that fits."""
    if value is None or record_size(dead) <= MAX_RECORD_BYTES:
        return dead
    marked = dead.model_copy(
        update={
            "payload": dead.payload.model_copy(
                update={"raw": "", "raw_truncated": True, "raw_bytes": len(value)}
            )
        }
    )
    room = MAX_RECORD_BYTES - record_size(marked)  # what the copy may take inside its quotes
    raw, encoding = raw_for_dead_letter(value, room)
    payload = marked.payload.model_copy(update={"raw": raw, "raw_encoding": encoding})
    return marked.model_copy(update={"payload": payload})


def refusal_for_contract_error(record: Record, error: ContractError) -> EventRefused:
    """The dead letter of a record that `topics.decode` refused."""
    event_id = error.event_id
    if event_id is not None and (
        not 0 < len(event_id) <= MAX_ID_CHARS or printable(event_id, multiline=False) != event_id
    ):
        # not an id that can be quoted: empty, too long, or holding a control character or a
        # lone surrogate (which UTF-8 cannot encode)
        event_id = None
    return refusal(record, error.stage, error.reason, refused_event_id=event_id)


def _broker_time(record: Record) -> dt.datetime | None:
    """The record's broker timestamp, when it is one the contract's timestamps can hold."""
    if not record.timestamp_ms:
        return None
    try:
        at = dt.datetime.fromtimestamp(record.timestamp_ms / 1000, dt.UTC)
    except (OverflowError, ValueError, OSError):
        return None
    return at if EARLIEST <= at <= LATEST else None


def _company_from_key(key: str | None) -> str:
    """The key's company part when it is a valid company id (`CompanyId`), else `_unknown`."""
    if key:
        candidate = key.split(":", 1)[0]
        if COMPANY_ID.fullmatch(candidate):
            return candidate
    return UNKNOWN_COMPANY
