"""The daily summary: due from the local hour, once per approver and day, only while items wait."""

from __future__ import annotations

import datetime as dt
import gc
import json
import tracemalloc
import uuid

import pytest

from consumers.dev import samples as se
from pipeline.rules import summary as summary_rules
from pipeline.rules.engine import react
from pipeline.rules.summary import SummaryState, Waiting, _line, due_summaries
from tests.support.rules import directory, event, incoming
from topics import decode, encode, record_size
from topics.events import ItemStatusChanged
from topics.limits import MAX_RECORD_BYTES
from topics.payloads import Actor, ItemType
from topics.specs import STATUS

CHICAGO_7AM = dt.datetime(2026, 11, 21, 13, 0, tzinfo=dt.UTC)  # 07:00 in America/Chicago


def _ready_status() -> ItemStatusChanged:
    outcome = react(None, incoming(event(se.project_submitted(), 0)), directory())
    status = outcome.events[0]
    assert isinstance(status, ItemStatusChanged)
    return status


def _waiting_state() -> SummaryState:
    state = SummaryState()
    state.apply_status(_ready_status())
    return state


def _later(status: ItemStatusChanged, minutes: int, new_status: str) -> ItemStatusChanged:
    return status.model_copy(
        update={
            "payload": status.payload.model_copy(
                update={"status": new_status, "sequence": (status.payload.sequence or 0) + minutes}
            ),
            "occurred_at": status.occurred_at + dt.timedelta(minutes=minutes),
        }
    )


def test_nothing_before_the_local_hour() -> None:
    early = CHICAGO_7AM - dt.timedelta(minutes=1)
    assert due_summaries(_waiting_state(), directory(), early) == []


def test_one_per_subscribed_approver_listing_waiting_items() -> None:
    due = due_summaries(_waiting_state(), directory(), CHICAGO_7AM)
    assert [s.payload.to for s in due] == [se.APPROVER["email"]]  # the viewer may not decide
    summary = due[0]
    assert str(summary.payload.date) == "2026-11-21"
    assert [line.item.id for line in summary.payload.items] == ["prj-100"]
    assert summary.payload.items[0].sent_by.user_id == se.SENDER["user_id"]


def test_never_twice_the_same_day_but_again_the_next() -> None:
    state = _waiting_state()
    for summary in due_summaries(state, directory(), CHICAGO_7AM):
        state.apply_summary(summary)
    assert due_summaries(state, directory(), CHICAGO_7AM + dt.timedelta(hours=5)) == []
    assert len(due_summaries(state, directory(), CHICAGO_7AM + dt.timedelta(days=1))) == 1


def test_nothing_when_no_item_waits() -> None:
    assert due_summaries(SummaryState(), directory(), CHICAGO_7AM) == []
    ready = _ready_status()
    state = SummaryState()
    state.apply_status(ready)
    state.apply_status(_later(ready, 1, "rejected"))
    assert due_summaries(state, directory(), CHICAGO_7AM) == []


def test_an_older_status_arriving_late_does_not_win() -> None:
    ready = _ready_status()
    state = SummaryState()
    state.apply_status(_later(ready, 1, "rejected"))
    state.apply_status(ready)  # a redelivery of the earlier status
    assert due_summaries(state, directory(), CHICAGO_7AM) == []
    state.apply_status(_later(ready, 2, "ready_to_export"))  # sent again
    (summary,) = due_summaries(state, directory(), CHICAGO_7AM)
    assert [line.item.id for line in summary.payload.items] == ["prj-100"]


def test_unsubscribed_approver_gets_none() -> None:
    d = directory()
    d.apply(event(se.approver_updated(se.APPROVER), -10, digest_subscribed=False))
    assert due_summaries(_waiting_state(), d, CHICAGO_7AM) == []


def test_same_id_for_the_same_day() -> None:
    first = due_summaries(_waiting_state(), directory(), CHICAGO_7AM)
    again = due_summaries(_waiting_state(), directory(), CHICAGO_7AM + dt.timedelta(hours=1))
    assert first[0].event_id == again[0].event_id


def test_thousands_of_waiting_items_list_the_oldest_that_fit_and_count_the_rest() -> None:
    state = SummaryState()
    sender = Actor(user_id="u-sam", email="sam.sender@acme.example", name="Sam Sender")
    title = "Façade panels, level 3 — " * 80  # 2000 characters, some of two bytes
    for n in range(5000):
        item_id = f"sc-{n:05d}"
        state.ready[item_id] = Waiting(
            f"acme-builders:commitment:{item_id}",
            "acme-builders",
            ItemType.COMMITMENT,
            item_id,
            f"SC-{n:05d}",
            title,
            CHICAGO_7AM - dt.timedelta(days=30) + dt.timedelta(minutes=n),
            sender,
            "Riverside Medical Office — " * 20,
            "1234567.89",
        )
    (summary,) = due_summaries(state, directory(), CHICAGO_7AM)
    assert record_size(summary) <= MAX_RECORD_BYTES
    listed = [line.item.id for line in summary.payload.items]
    assert 0 < len(listed) < 5000
    assert summary.payload.more_items == 5000 - len(listed)
    assert listed == [f"sc-{n:05d}" for n in range(len(listed))]  # those waiting longest
    one_more = len(summary.payload.items[-1].model_dump_json(exclude_none=True).encode()) + 1
    assert record_size(summary) + one_more > MAX_RECORD_BYTES - 8  # as many as fit


def _many_waiting(count: int) -> SummaryState:
    state = SummaryState()
    sender = Actor(user_id="u-sam", email="sam.sender@acme.example", name="Sam Sender")
    for n in range(count):
        item_id = f"sc-{n:06d}"
        state.ready[item_id] = Waiting(
            f"acme-builders:commitment:{item_id}",
            "acme-builders",
            ItemType.COMMITMENT,
            item_id,
            None,
            "Curtain wall " * 10,
            CHICAGO_7AM - dt.timedelta(days=30) + dt.timedelta(seconds=n),
            sender,
            "Riverside Medical Office",
            "1234.50",
        )
    return state


def test_a_summary_builds_only_the_lines_that_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every waiting item's line was built (2 s of the processor's event loop for 100 000
    items) when one record holds a few hundred of them."""
    built = []
    monkeypatch.setattr(summary_rules, "_line", lambda w, zone: built.append(w) or _line(w, zone))
    (summary,) = due_summaries(_many_waiting(20_000), directory(), CHICAGO_7AM)
    kept = len(summary.payload.items)
    assert 0 < kept < 20_000 and summary.payload.more_items == 20_000 - kept
    assert len(built) == kept + 1  # those listed and the first that did not fit


def test_once_the_days_summaries_are_out_the_timer_reads_no_waiting_item(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The timer asks every minute; the waiting items were gathered and sorted each time,
    even when every approver had had the day's summary."""
    state = _many_waiting(10)
    for sent in due_summaries(state, directory(), CHICAGO_7AM):
        state.apply_summary(sent)
    read = []
    monkeypatch.setattr(SummaryState, "waiting", lambda self, company: read.append(company) or [])
    assert due_summaries(state, directory(), CHICAGO_7AM + dt.timedelta(minutes=1)) == []
    assert read == []


def test_a_short_list_is_whole() -> None:
    (summary,) = due_summaries(_waiting_state(), directory(), CHICAGO_7AM)
    assert summary.payload.more_items == 0 and len(summary.payload.items) == 1


def test_a_line_names_the_project_and_the_amount_and_the_summary_the_company() -> None:
    """The summary showed an empty project name, no amount, and the company's id (#19)."""
    d = directory(company_name="Acme Builders, Inc.")
    due = due_summaries(_waiting_state(), d, CHICAGO_7AM)
    (line,) = due[0].payload.items
    assert line.item.project_name == "Riverside Medical Office"
    assert line.amount is not None and float(line.amount) == 4_500_000
    assert due[0].payload.company_name == "Acme Builders, Inc."


def test_a_line_says_when_the_item_was_sent_in_the_company_timezone() -> None:
    """People read the summary's times as local (#19): 15:00 UTC is 09:00 in Chicago."""
    (summary,) = due_summaries(_waiting_state(), directory(), CHICAGO_7AM)
    sent = summary.payload.items[0].submitted_at
    assert sent.utcoffset() == dt.timedelta(hours=-6)
    assert (sent.hour, sent.minute) == (9, 0)


def _decoded_statuses(count: int) -> list[ItemStatusChanged]:
    """`count` ready_to_export statuses of distinct items, each decoded from its own bytes as
    the processor's replica reads them (no strings shared between events)."""
    template = json.loads(encode(_ready_status()))
    out = []
    for n in range(count):
        template["item"]["id"] = f"prj-{n:06d}"
        template["event_id"] = str(uuid.UUID(int=n))
        template["payload"]["sequence"] = 1000 + n
        event = decode(json.dumps(template).encode(), STATUS)
        assert isinstance(event, ItemStatusChanged)
        out.append(event)
    return out


def test_a_waiting_item_costs_the_summary_state_little_memory() -> None:
    # the processor keeps one entry per item it has seen, and a line's fields per waiting item:
    # at 100 000 waiting items this is most of its memory
    count = 4000
    events = _decoded_statuses(count)
    state = SummaryState()
    state.apply_status(events[0])  # the company and the sender, shared by every item
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for status in events[1:]:
            state.apply_status(status)
        del events, status
        gc.collect()
        per_item = (tracemalloc.get_traced_memory()[0] - before) / (count - 1)
    finally:
        tracemalloc.stop()
    assert len(state.ready) == count
    assert per_item <= 300, f"{per_item:.0f} bytes per waiting item"


def test_a_change_without_a_sequence_never_wins_over_a_numbered_one() -> None:
    numbered = _ready_status()
    assert numbered.payload.sequence is not None
    legacy = _later(numbered, 5, "rejected")
    legacy = legacy.model_copy(
        update={"payload": legacy.payload.model_copy(update={"sequence": None})}
    )
    state = SummaryState()
    state.apply_status(numbered)
    state.apply_status(legacy)  # written before sequences: it comes first, whatever its time
    assert len(state.waiting(numbered.company_id)) == 1
    state = SummaryState()
    state.apply_status(legacy)
    state.apply_status(numbered)
    assert len(state.waiting(numbered.company_id)) == 1
