"""Decoded events, the demo directory and rule runs, for the pure tests of the rules (no I/O)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from consumers.dev import samples as se
from pipeline.rules.directory import Directory
from pipeline.rules.engine import react
from pipeline.rules.machine import Outcome
from pipeline.rules.state import Incoming, ItemState
from topics import decode
from topics.events import ItemEvent
from topics.record import Record

T0 = dt.datetime(2026, 11, 21, 15, 0, tzinfo=dt.UTC)
_offsets = iter(range(10**9))


def at(minutes: int) -> dt.datetime:
    """A time `minutes` after T0."""
    return T0 + dt.timedelta(minutes=minutes)


def event(raw: dict[str, Any], minutes: int | None = None, **payload: Any) -> Any:
    """Decode a sample-event dict (optionally at T0+minutes, with payload overrides)."""
    raw = dict(raw)
    if minutes is not None:
        raw["occurred_at"] = at(minutes).isoformat()
    if payload:
        raw["payload"] = {**raw["payload"], **payload}
    return decode(json.dumps(raw))


def directory(**company: Any) -> Directory:
    """The demo company's directory: a privileged approver, a viewer, settings."""
    d = Directory()
    d.apply(event(se.company_settings(**company), -100))
    d.apply(event(se.approver_updated(se.APPROVER), -100))
    d.apply(event(se.approver_updated(se.VIEWER, privileged=False), -100))
    return d


def incoming(e: ItemEvent, topic: str = "erp.submissions") -> Incoming:
    """The event as if consumed from `topic`."""
    return Incoming(
        e,
        Record(
            topic,
            0,
            next(_offsets),
            e.item_key.encode(),
            json.dumps(json.loads(e.model_dump_json(exclude_none=True))).encode(),
        ),
    )


def run(
    events: list[ItemEvent], d: Directory | None = None, state: ItemState | None = None
) -> tuple[ItemState | None, list[Outcome]]:
    """Feed events in order; the final state and every outcome."""
    d = d or directory()
    outcomes = []
    for e in events:
        outcome = react(state, incoming(e), d)
        if outcome.state is not None:
            state = outcome.state
        outcomes.append(outcome)
    return state, outcomes


def types(outcome: Outcome) -> list[str]:
    """Event types an outcome publishes."""
    return [e.event_type for e in outcome.events]
