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


@dataclass
class Verdicts:
    """The live refusals at stage `authorize`, by the refused event's id."""

    refused: dict[str, str] = field(default_factory=dict)

    def add(self, dead: EventRefused) -> None:
        """Note a dead letter (only a refusal at `authorize` of a known event is a verdict)."""
        payload = dead.payload
        if payload.stage is RefusalStage.AUTHORIZE and payload.refused_event_id:
            self.refused.setdefault(payload.refused_event_id, payload.error)


@dataclass
class RecordedDirectory(Directory):
    """The directory as replay consults it: settings and names from erp.directory, verdicts on
    who may act from `verdicts` (those of the live run), never judged again by timestamps."""

    verdicts: Verdicts = field(default_factory=Verdicts)

    def refusal(self, event: Envelope, sender: str | None = None) -> str | None:
        """The live refusal of `event`, if it was refused (None: it was allowed)."""
        return self.verdicts.refused.get(str(event.event_id))


__all__ = ["RecordedDirectory", "Verdicts"]
