"""An input whose outcome would not fit in Kafka records is refused, and the item kept as it was.

The processor writes an item's state and outbox to its table (and changelog) and publishes
what the record derived. Before, a submission near the input limit was stored in a state
bigger than Kafka takes (faust only logs the changelog failure: the state is lost), and an
accept of a large item derived an `ExportRequested` and a state too big in the same way.
"""

from __future__ import annotations

import json

from consumers.dev import samples as se
from pipeline.processor.config import ROUTES
from pipeline.processor.store import ItemStore
from pipeline.rules import outbox
from pipeline.rules.engine import react
from pipeline.rules.sizes import outbox_record_bytes, state_record_bytes
from pipeline.rules.state import ItemState
from tests.support.events import commitment_of_size
from tests.support.processor import Harness
from tests.support.rules import directory, event, incoming
from topics import encode, record_size
from topics.events import EventRefused, ItemStatusChanged
from topics.limits import MAX_EVENT_BYTES, MAX_RECORD_BYTES

SUBMISSIONS = "erp.submissions"
DECISIONS = "erp.decisions"


def _too_big(dead: object) -> EventRefused:
    assert isinstance(dead, EventRefused)
    assert dead.payload.stage == "business_rule"
    assert dead.payload.error.startswith("too big to apply: ")
    assert f"over the {MAX_RECORD_BYTES}-byte limit of a record" in dead.payload.error
    assert record_size(dead) <= MAX_RECORD_BYTES
    return dead


def test_a_submission_whose_state_would_not_fit_is_refused_and_nothing_is_stored() -> None:
    raw = commitment_of_size("sc-big", MAX_EVENT_BYTES - 1000)
    outcome = react(None, incoming(event(raw)), directory())
    assert outcome.state is None
    (dead,) = outcome.events
    assert "the item's state would take" in _too_big(dead).payload.error
    assert dead.payload.refused_event_id == raw["event_id"]


async def test_the_processor_refuses_it_and_handles_the_next_item() -> None:
    harness = Harness()
    big = commitment_of_size("sc-big", MAX_EVENT_BYTES - 1000)
    (dead,) = await harness.send(SUBMISSIONS, big)
    _too_big(dead)
    assert b"acme-builders:commitment:sc-big" not in harness.items
    (status,) = await harness.send(SUBMISSIONS, se.project_submitted("prj-next"))
    assert isinstance(status, ItemStatusChanged) and status.payload.status == "ready_to_export"


async def test_an_accept_whose_export_would_not_fit_leaves_the_item_waiting() -> None:
    harness = Harness()
    key = b"acme-builders:commitment:sc-big"
    # fits while waiting; the accepted state would hold the snapshot twice (submission, export)
    (ready,) = await harness.send(SUBMISSIONS, commitment_of_size("sc-big", 600_000))
    assert ready.payload.status == "ready_to_export"
    before = harness.items[key]
    accept = se.accepted("commitment", "sc-big")
    (dead,) = await harness.send(DECISIONS, accept)
    assert _too_big(dead).payload.refused_event_id == accept["event_id"]
    assert harness.items[key] == before  # the previous state, untouched
    published = await harness.send(DECISIONS, se.rejected("commitment", "sc-big", "Too large"))
    assert [e.event_type for e in published] == ["ItemStatusChanged", "RejectionNotice"]
    assert published[0].payload.status == "rejected"


def test_sizes_are_measured_as_the_items_table_writes_them() -> None:
    outcome = react(None, incoming(event(commitment_of_size("sc-1", 300_000))), directory())
    assert outcome.state is not None
    key = outcome.state.key
    table: dict[bytes, bytes] = {}
    store = ItemStore(table)
    store.put_state(key, outcome.state)
    store.put_outbox(key, outcome.events)
    assert state_record_bytes(key, outcome.state) == len(key.encode()) + len(table[key.encode()])
    assert outbox_record_bytes(key, outcome.events) == len(outbox.key(key)) + len(
        table[outbox.key(key)]
    )
    assert store.state(key) == outcome.state
    assert store.outbox(key) == outcome.events


def test_an_outbox_holds_its_events_unescaped_and_reads_the_earlier_form() -> None:
    events = react(None, incoming(event(se.project_submitted())), directory()).events
    packed = outbox.pack(events)
    assert len(packed) == sum(len(encode(e)) for e in events) + len(events) - 1
    assert outbox.unpack(packed, ROUTES) == events
    earlier = json.dumps(
        [{"event_type": e.event_type, "value": encode(e).decode()} for e in events]
    ).encode()
    assert outbox.unpack(earlier, ROUTES) == events


def test_a_state_keeps_only_what_is_present() -> None:
    state = react(None, incoming(event(se.project_submitted())), directory()).state
    assert state is not None
    assert b"null" not in state.stored()
    assert ItemState.from_stored(state.stored()) == state
