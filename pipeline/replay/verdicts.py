"""Who was allowed to act, as the live processor judged it: what replay consults (pure).

The live processor judges a decision (or a retrieve) against the directory as its erp.directory
replica has it when the decision is processed: each entry's latest version in log order. Which
versions those were depends on when the decision was processed, not on anything in the logs, so
replay cannot work it out again from erp.directory: it takes the live verdicts instead. A
refusal leaves a trace kept forever, the `EventRefused` at stage `authorize` on erp.dead-letters
(its reason names the directory version judged against and what that version said); a decision
with no such refusal was allowed. Nothing here needs an old version of a directory entry, so
the compaction of erp.directory cannot change a replayed verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.rules.directory import Directory
from topics.events import Envelope, EventRefused
from topics.payloads import RefusalStage
from topics.record import Record

#: Where a record was read: (topic, partition, offset).
Coordinates = tuple[str, int, int]


#: Stages at which the live processor refused a decoded, well-keyed input for what it met:
#: who may act (`authorize`), the item's state when it arrived (`transition`), an outcome it
#: could not keep (`business_rule`).
RECORDED_STAGES = (RefusalStage.AUTHORIZE, RefusalStage.TRANSITION, RefusalStage.BUSINESS_RULE)


@dataclass
class Verdicts:
    """The live refusals, by the refused event's id: at `authorize` (`refused`), and every
    refusal of an upstream input at a recorded stage (`inputs`: stage and reason).

    Which record of an item the live processor read first, among records of different topics
    (a decision and its submission, an accept and a retrieve), depends on how its consumer
    interleaved the topics, which no log records; the refusal it then gave is recorded. Replay
    takes such a record as refused with the live reason (`pipeline.rules.engine.
    recorded_refusal`), so the records it applies are those live applied, whatever order the
    topics merge in.
    """

    refused: dict[str, str] = field(default_factory=dict)
    inputs: dict[Coordinates, tuple[RefusalStage, str]] = field(default_factory=dict)

    def add(self, dead: EventRefused) -> None:
        """Note a dead letter (only a refusal of a decoded event at a recorded stage counts).

        Input refusals are keyed by the refused record's coordinates, not its event id: a
        copy of an event published again may have met another fate than the first.
        """
        payload = dead.payload
        if payload.refused_event_id is None or payload.stage not in RECORDED_STAGES:
            return
        source = payload.source
        where = (source.topic, source.partition, source.offset)
        self.inputs.setdefault(where, (payload.stage, payload.error))
        if payload.stage is RefusalStage.AUTHORIZE:
            self.refused.setdefault(payload.refused_event_id, payload.error)

    def of_record(self, record: Record) -> tuple[RefusalStage, str] | None:
        """How the live processor refused the record at these coordinates, if it did."""
        return self.inputs.get((record.topic, record.partition, record.offset))


@dataclass
class RecordedDirectory(Directory):
    """The directory as replay consults it: settings and names from erp.directory, verdicts on
    who may act from `verdicts` (those of the live run), never judged again by timestamps."""

    verdicts: Verdicts = field(default_factory=Verdicts)

    def refusal(self, event: Envelope, sender: str | None = None) -> str | None:
        """The live refusal of `event`, if it was refused (None: it was allowed)."""
        return self.verdicts.refused.get(str(event.event_id))


__all__ = ["RecordedDirectory", "Verdicts"]
