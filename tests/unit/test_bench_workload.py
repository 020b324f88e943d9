"""The benchmark's pure parts: the item mix, the approver's 90/10 split, percentiles."""

from __future__ import annotations

import json

import pytest

from consumers.bench import workload
from consumers.bench.report import percentile
from topics import decode
from topics.specs import DECISIONS, SUBMISSIONS


def test_the_mix_alternates_types_and_unknown_types_are_refused() -> None:
    types = workload.item_types("mix")
    assert [workload.item_type(i, types) for i in range(4)] == [
        "project",
        "commitment",
        "project",
        "commitment",
    ]
    assert workload.item_types("commitment") == ("commitment",)
    with pytest.raises(ValueError):
        workload.item_types("invoice")
    assert workload.item_types(" project , commitment ") == ("project", "commitment")
    assert workload.item_types(" mix ") == workload.TYPES  # was "unknown item type(s) mix"
    for spec, words in [
        ("project,", "empty type"),  # the empty entry was dropped without a word
        (",", "empty type"),
        ("", "empty type"),
        ("project,project", "twice"),
        ("mix,project", "mix alone"),
    ]:
        with pytest.raises(ValueError, match=words):
            workload.item_types(spec)


@pytest.mark.parametrize("first", [0, 7, 9, 10, 1234])
@pytest.mark.parametrize("accepted", [1, 9, 10, 200])
def test_the_load_run_holds_as_many_accepted_items_as_asked(first: int, accepted: int) -> None:
    """--min-samples 200 gave 180 accept → synced latencies (one in ten is rejected)."""
    count = workload.items_for_accepted(first, accepted)
    indices = range(first, first + count)
    assert sum(workload.accepts(i) for i in indices) == accepted
    assert workload.accepts(first + count - 1)  # none more than needed


def test_submissions_and_decisions_are_valid_contract_events() -> None:
    types = workload.item_types("mix")
    for index in range(20):
        submitted = decode(json.dumps(workload.submission("bench-x", index, types)), SUBMISSIONS)
        assert submitted.company_id == "bench-x"
        ident = workload.item_id(index, types)
        assert workload.index_of(ident) == index
        kind = workload.item_type(index, types)
        answer = decode(json.dumps(workload.decision("bench-x", kind, ident, 1)), DECISIONS)
        expected = "ItemAccepted" if workload.accepts(index) else "ItemRejected"
        assert answer.event_type == expected


def test_one_item_in_ten_is_rejected() -> None:
    assert sum(not workload.accepts(i) for i in range(1000)) == 100


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None
