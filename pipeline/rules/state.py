"""The processor's state per item and the incoming-record wrapper the rules work on."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from topics import encode
from topics.events import (
    ExportRequested,
    ExportRetryRequested,
    ItemAccepted,
    ItemEvent,
    ItemRejected,
    ItemSubmitted,
)
from topics.fields import Frozen
from topics.payloads import ItemStatus, ItemType, KafkaSource
from topics.record import Record

#: How many recent `event_id`s an item remembers for de-duplication.
SEEN_LIMIT = 64
#: How many upstream inputs (submissions, retrieves, decisions) an item remembers as applied
#: or held, and, apart, as refused: far more than an item's real history, so in practice never
#: forgotten, yet bounded (about 40 bytes each).
DECIDED_LIMIT = 256
#: How many decisions for not-yet-seen submission versions an item holds at most.
HELD_LIMIT = 16

Decision = Annotated[
    ItemAccepted | ItemRejected | ExportRetryRequested, Field(discriminator="event_type")
]


class HeldDecision(Frozen):
    """A decision for a submission version not seen yet, with where it came from."""

    event: Decision
    source: KafkaSource

    def record(self) -> Record:
        """The record it arrived in (its bytes re-encoded), to dead-letter it later."""
        return Record.at(self.source, encode(self.event))


class ItemState(Frozen):
    """Everything the processor knows about one item; a pure function of its events."""

    company_id: str
    item_type: ItemType
    item_id: str
    status: ItemStatus | None = None
    version: int = 0
    submission: ItemSubmitted | None = None
    export: ExportRequested | None = None
    erp_reference: str | None = None
    last_error: str | None = None
    updated_at: dt.datetime | None = None
    seen: tuple[str, ...] = ()
    held: tuple[HeldDecision, ...] = ()
    #: the `sequence` of the item's last status change (0: none yet, or only before the field)
    sequence: int = 0
    #: upstream inputs applied or held, and those refused: never applied again (`remember`)
    decided: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()

    @classmethod
    def new(cls, event: ItemEvent) -> ItemState:
        """The empty state of the item an event is about."""
        return cls(company_id=event.company_id, item_type=event.item.type, item_id=event.item.id)

    @property
    def key(self) -> str:
        """The item key, `{company_id}:{item_type}:{item_id}`."""
        return f"{self.company_id}:{self.item_type.value}:{self.item_id}"

    def stored(self) -> bytes:
        """The state as the processor's items table holds it (JSON, UTF-8).

        Absent values are left out, as the codec does for events (every field that may be
        null defaults to null): an item's state takes about the size of the events it keeps.
        """
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_stored(cls, value: bytes) -> ItemState:
        """The state back from its stored form."""
        return cls.model_validate_json(value)

    def remember(self, event_id: str) -> ItemState:
        """This state with `event_id` added to the recent ids (oldest dropped past the limit)."""
        return self.model_copy(update={"seen": (*self.seen, event_id)[-SEEN_LIMIT:]})

    def known(self, event_id: str) -> bool:
        """Whether the event was met before: among the recent ids, or an upstream input the
        item applied, held or refused."""
        return event_id in self.seen or event_id in self.decided or event_id in self.refused

    def remember_input(self, event_id: str, *, refused: bool) -> ItemState:
        """This state remembering an upstream input as applied or held, or as refused.

        Kept apart so that a flood of refused inputs never pushes out what was applied; each
        list drops its oldest past `DECIDED_LIMIT`.
        """
        if refused:
            return self.model_copy(update={"refused": (*self.refused, event_id)[-DECIDED_LIMIT:]})
        return self.model_copy(update={"decided": (*self.decided, event_id)[-DECIDED_LIMIT:]})


@dataclass(frozen=True)
class Incoming:
    """A decoded event with the record it came from."""

    event: ItemEvent
    record: Record
