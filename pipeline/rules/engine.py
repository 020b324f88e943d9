"""One event in, the item's new state and the events to publish out: the processor's rules."""

from __future__ import annotations

from pipeline.rules.directory import Directory
from pipeline.rules.machine import DECISIONS, Outcome, transition
from pipeline.rules.precheck import version_mismatch
from pipeline.rules.refusals import refusal
from pipeline.rules.sizes import oversize
from pipeline.rules.state import HELD_LIMIT, HeldDecision, Incoming, ItemState
from topics.events import Envelope, EventRefused, ItemEvent, ItemRetrieved, ItemSubmitted
from topics.payloads import RefusalStage


def _version_of(incoming: Incoming) -> int | None:
    payload = getattr(incoming.event, "payload", None)
    version = getattr(payload, "submission_version", None)
    return version if isinstance(version, int) else None


def _judged(state: ItemState, event: ItemEvent, directory: Directory) -> str | None:
    """Why the directory (as it is now, in log order) says the event's actor may not act;
    None when they may or when nothing needs judging (not a decision, nor a retrieve of a
    submitted item: the table refuses a retrieve of an item never submitted)."""
    if isinstance(event, DECISIONS):
        return directory.refusal(event)
    if isinstance(event, ItemRetrieved) and state.submission is not None:
        return directory.refusal(event, state.submission.actor.user_id)
    return None


def _as_judged(incoming: Incoming, directory: Directory) -> Incoming:
    """The event with its actor as the directory names them (what the derived events carry);
    the record stays as it arrived."""
    event = incoming.event
    if not isinstance(event, (*DECISIONS, ItemRetrieved)):
        return incoming
    actor = directory.acting(event)
    if actor == event.actor:
        return incoming
    return Incoming(event.model_copy(update={"actor": actor}), incoming.record)


def _refuse(state: ItemState, incoming: Incoming, stage: RefusalStage, error: str) -> Outcome:
    return Outcome(state, [refusal(incoming.record, stage, error, event=incoming.event)])


def _hold(state: ItemState, incoming: Incoming) -> Outcome:
    """Keep a decision for a version not seen yet (the oldest is refused when too many wait)."""
    held = (*state.held, HeldDecision(event=incoming.event, source=incoming.record.source()))
    dropped, kept = held[:-HELD_LIMIT], held[-HELD_LIMIT:]
    events: list[Envelope] = [
        refusal(
            old.record(),
            RefusalStage.TRANSITION,
            "too many decisions held for unseen submission versions",
            event=old.event,
        )
        for old in dropped
    ]
    return Outcome(state.model_copy(update={"held": kept}), events)


def _release(outcome: Outcome, directory: Directory) -> Outcome:
    """After a submission: apply decisions held for its version, refuse those it superseded."""
    state = outcome.state
    assert state is not None
    events, waiting = list(outcome.events), []
    due = state.held  # in the order they were read: the log's, never the senders' clocks
    state = state.model_copy(update={"held": ()})
    for held in due:
        version = held.event.payload.submission_version or 0
        error = _judged(state, held.event, directory) if version == state.version else None
        if error is not None:  # judged again: the directory may have changed while it waited
            events.append(refusal(held.record(), RefusalStage.AUTHORIZE, error, event=held.event))
        elif version > state.version:
            waiting.append(held)
        elif version < state.version:
            events.append(
                refusal(
                    held.record(),
                    RefusalStage.TRANSITION,
                    f"decision for submission version {version} was superseded by "
                    f"version {state.version}",
                    event=held.event,
                )
            )
        else:
            step = transition(
                state, _as_judged(Incoming(held.event, held.record()), directory), directory
            )
            state = step.state or state
            events.extend(step.events)
    return Outcome(state.model_copy(update={"held": tuple(waiting)}), events)


def react(
    state: ItemState | None, incoming: Incoming, directory: Directory, *, measured: bool = True
) -> Outcome:
    """Apply one item event to the item's state.

    Order of checks: de-duplication on `event_id` (the recent ids, and every upstream input the
    item applied, held or refused: `ItemState.known`); who may act (decisions, and retrieves of a
    submitted item), judged against the directory as it is now, each entry's latest version in
    log order, never as of the event's own time; the submission-version hold/stale rule (a
    held decision is judged again when it is applied); then the reaction table, with the
    actor as the directory names them; last, the size of what that would write (`sizes`).
    `Outcome.state` is None when nothing is to be stored: an unknown item stays unknown, or
    the outcome was too big to write.

    `measured` False skips the size check, for a replay that takes the live processor's
    refusals of inputs (those too big among them) from erp.dead-letters instead: whatever live
    applied fitted.
    """
    outcome = _react(state, incoming, directory)
    if outcome.duplicate:
        return outcome
    outcome = _remember_input(incoming.event, outcome)
    if not measured:
        return outcome
    problem = oversize(incoming.event.item_key, outcome.state, outcome.events)
    if problem is None:
        return outcome
    # the item keeps its previous state; only the refusal of this record is published
    error = f"too big to apply: {problem}"
    return Outcome(
        None,
        [refusal(incoming.record, RefusalStage.BUSINESS_RULE, error, event=incoming.event)],
    )


def _react(state: ItemState | None, incoming: Incoming, directory: Directory) -> Outcome:
    event = incoming.event
    current = state or ItemState.new(event)
    event_id = str(event.event_id)
    if current.known(event_id):
        return Outcome(state, [], duplicate=True)
    current = current.remember(event_id)
    version = _version_of(incoming)
    error = _judged(current, event, directory)
    if error is not None:
        return _keep_unknown(state, _refuse(current, incoming, RefusalStage.AUTHORIZE, error))
    if isinstance(event, DECISIONS) and version is not None and version > current.version:
        return _hold(current, incoming)
    if version is not None and version != current.version and not isinstance(event, ItemSubmitted):
        error = version_mismatch(event.event_type, version, current.version)
        return _keep_unknown(state, _refuse(current, incoming, RefusalStage.TRANSITION, error))
    outcome = transition(current, _as_judged(incoming, directory), directory)
    if isinstance(event, ItemSubmitted) and outcome.state is not None and outcome.state.held:
        outcome = _release(outcome, directory)
    return _keep_unknown(state, outcome)


def recorded_refusal(
    state: ItemState | None, incoming: Incoming, stage: RefusalStage, error: str
) -> Outcome:
    """The outcome of a record the live processor refused with `error` at `stage`, for
    replay (`pipeline.replay.verdicts`): the item's state as `react` leaves it after that
    refusal (the event remembered, nothing else changed) and the refusal. A duplicate is
    still a duplicate."""
    event = incoming.event
    current = state or ItemState.new(event)
    if current.known(str(event.event_id)):
        return Outcome(state, [], duplicate=True)
    current = current.remember(str(event.event_id))
    outcome = _keep_unknown(state, _refuse(current, incoming, stage, error))
    return _remember_input(event, outcome)


#: What people send about an item: remembered beyond the recent ids, so that a copy of one
#: replayed however much later is a duplicate, never applied a second time.
UPSTREAM = (ItemSubmitted, ItemRetrieved, *DECISIONS)


def _remember_input(event: ItemEvent, outcome: Outcome) -> Outcome:
    """The outcome with an upstream input remembered as applied or held, or as refused."""
    if outcome.state is None or not isinstance(event, UPSTREAM):
        return outcome
    event_id = str(event.event_id)
    refused = any(
        isinstance(out, EventRefused) and out.payload.refused_event_id == event_id
        for out in outcome.events
    )
    state = outcome.state.remember_input(event_id, refused=refused)
    return Outcome(state, outcome.events, outcome.duplicate)


def _keep_unknown(before: ItemState | None, outcome: Outcome) -> Outcome:
    """An item nobody submitted and nothing is held for is not stored at all."""
    after = outcome.state
    if before is None and after is not None and after.status is None and not after.held:
        return Outcome(None, outcome.events, outcome.duplicate)
    return outcome


__all__ = ["Outcome", "react", "recorded_refusal"]
