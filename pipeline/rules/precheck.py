"""What the processor would refuse of a decision, judged before it is sent (pure).

The console refuses on the spot what the pipeline would refuse, with the same words: the
messages are built here and the engine and the reaction table use the same functions.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.rules.directory import Directory
from pipeline.rules.machine import REACTIONS, not_allowed, trigger_of
from pipeline.rules.validation import accept_fields
from topics.events import ItemAccepted, ItemEvent
from topics.payloads import ItemStatus, RefusalStage


def version_mismatch(event_type: str, version: int, current: int) -> str:
    """Why a decision or retrieve for `version` is refused when the item is at `current`."""
    what = "stale" if version < current else "unknown"
    return f"{event_type} for {what} submission version {version} (current is {current})"


@dataclass(frozen=True)
class Precheck:
    """A refusal the pipeline would make: its stage and reason."""

    stage: RefusalStage
    reason: str


def judge_decision(
    event: ItemEvent, status: ItemStatus | None, version: int, directory: Directory
) -> Precheck | None:
    """Why the processor would refuse decision `event` for an item in `status` at submission
    `version` (None: it would apply it, as far as what is known here goes).

    Checks in the engine's order: who may act (the directory's latest entries), a stale
    `submission_version`, the reaction table, the accept-time rules. A version newer than
    `version` is not refused: the processor holds it until that submission arrives.
    """
    error = directory.refusal(event)
    if error is not None:
        return Precheck(RefusalStage.AUTHORIZE, error)
    asked = getattr(getattr(event, "payload", None), "submission_version", None)
    if isinstance(asked, int) and asked < version:
        return Precheck(RefusalStage.TRANSITION, version_mismatch(event.event_type, asked, version))
    if isinstance(asked, int) and asked > version:
        return None
    trigger = trigger_of(event)
    if REACTIONS.get((status, trigger)) is None:
        return Precheck(RefusalStage.TRANSITION, not_allowed(trigger, status))
    if isinstance(event, ItemAccepted):
        try:
            accept_fields(event, directory.settings(event.company_id, event.occurred_at))
        except ValueError as exc:
            return Precheck(RefusalStage.BUSINESS_RULE, str(exc))
    return None


__all__ = ["Precheck", "judge_decision", "version_mismatch"]
