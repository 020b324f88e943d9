"""What the item page derives: changes between submissions, refusals worth showing."""

from __future__ import annotations

import datetime as dt
import uuid

from consumers.console.detail import changes
from consumers.readmodel.catalog import refusal_row
from topics.events import EventRefused


def test_changes_name_line_items_by_their_id_not_their_place() -> None:
    before = {
        "title": "A",
        "lines": [{"id": "l1", "amount": "1.00"}, {"id": "l2", "amount": "2.00"}],
    }
    after = {
        "title": "A",
        "lines": [{"id": "l2", "amount": "2.50"}, {"id": "l3", "amount": "3.00"}],
    }
    assert changes(before, after) == [
        {"field": "lines[l1].amount", "before": "1.00", "after": None},
        {"field": "lines[l1].id", "before": "l1", "after": None},
        {"field": "lines[l2].amount", "before": "2.00", "after": "2.50"},
        {"field": "lines[l3].amount", "before": None, "after": "3.00"},
        {"field": "lines[l3].id", "before": None, "after": "l3"},
    ]


def _refused(topic: str, item: bool = True) -> EventRefused:
    return EventRefused.model_validate(
        {
            "event_id": str(uuid.uuid4()),
            "occurred_at": dt.datetime(2026, 11, 21, tzinfo=dt.UTC),
            "company_id": "acme",
            "item": {"type": "commitment", "id": "sc-1"} if item else None,
            "actor": {"user_id": "u1", "email": "u1@acme.example"},
            "payload": {
                "stage": "authorize",
                "error": "user u1 may not push to accounting",
                "source": {"topic": topic, "partition": 0, "offset": 7},
                "raw": "{}",
                "refused_event_type": "ItemAccepted",
            },
        }
    )


def test_only_refusals_of_an_items_submissions_and_decisions_are_kept() -> None:
    kept = refusal_row(_refused("staging.erp.decisions"), "staging.")
    assert kept is not None and kept["source_topic"] == "erp.decisions"
    assert kept["stage"] == "authorize" and kept["item_id"] == "sc-1"
    assert refusal_row(_refused("staging.erp.export-results"), "staging.") is None
    assert refusal_row(_refused("staging.erp.decisions", item=False), "staging.") is None


def test_amounts_show_as_people_read_them() -> None:
    """The views showed the read model's numeric as it is stored: 250000.0000."""
    from consumers.console.pages import money, templates

    assert money("250000.0000") == "250,000.00"
    assert money(-1500.5) == "-1,500.50"
    assert money(None) == "" and money("n/a") == "n/a"
    rendered = templates.env.from_string("{{ amount | money }}").render(amount="48000.00")
    assert rendered == "48,000.00"
