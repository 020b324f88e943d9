"""Backoff between export tries, and which offsets are safe to commit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.worker.backoff import backoff_delay
from consumers.worker.offsets import OffsetTracker


def test_backoff_doubles_up_to_the_cap_with_a_floor_of_half() -> None:
    floors = [backoff_delay(n, 0.5, 4.0, 0.0) for n in range(1, 7)]
    ceilings = [backoff_delay(n, 0.5, 4.0, 1.0) for n in range(1, 7)]
    assert floors == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


@given(st.integers(1, 500), st.floats(0.01, 10), st.floats(0.01, 100), st.floats(0, 1))
def test_backoff_stays_within_half_and_all_of_its_ceiling(
    tries: int, base: float, cap: float, rand: float
) -> None:
    ceiling = min(cap, base * 2.0 ** (tries - 1))
    assert ceiling / 2 <= backoff_delay(tries, base, cap, rand) <= ceiling


def test_backoff_counts_tries_from_one() -> None:
    with pytest.raises(ValueError):
        backoff_delay(0, 1, 1, 0)


def test_commits_stop_at_the_first_record_still_in_flight() -> None:
    tracker = OffsetTracker()
    for offset in (10, 11, 12):
        tracker.started("p0", offset)
    tracker.finished("p0", 11)
    tracker.finished("p0", 12)
    assert tracker.committable() == {"p0": 10}
    tracker.committed({"p0": 10})
    assert tracker.committable() == {}
    tracker.finished("p0", 10)
    assert tracker.committable() == {"p0": 13}
    assert tracker.pending() == 0


def test_partitions_are_independent_and_forgotten_on_revoke() -> None:
    tracker = OffsetTracker()
    tracker.started("p0", 5)
    tracker.started("p1", 7)
    tracker.finished("p1", 7)
    assert tracker.committable() == {"p0": 5, "p1": 8}
    tracker.forget(["p0"])
    assert tracker.committable() == {"p1": 8}


@given(st.lists(st.booleans(), min_size=1, max_size=40))
def test_the_committable_offset_never_passes_an_unfinished_record(done: list[bool]) -> None:
    tracker = OffsetTracker()
    for offset in range(len(done)):
        tracker.started("p", offset)
    for offset, finished in enumerate(done):
        if finished:
            tracker.finished("p", offset)
    first_unfinished = next((o for o, d in enumerate(done) if not d), len(done))
    assert tracker.committable() == {"p": first_unfinished}


def test_a_rewound_partition_has_nothing_in_flight_from_the_rewind_on() -> None:
    tracker = OffsetTracker()
    for offset in (3, 4, 5):
        tracker.started("p0", offset)
    tracker.finished("p0", 3)
    tracker.rewind("p0", 4)
    assert tracker.committable() == {"p0": 4}
    assert tracker.pending() == 0
