"""The bench's memory arithmetic: the soak's fitted slope and verdict, object sizes."""

from __future__ import annotations

import sys

import pytest

from consumers.bench.memory import RssSampler, deep_size, slope_per_min

MIB = 2**20


def test_slope_is_the_least_squares_fit_in_bytes_per_minute() -> None:
    samples = [(float(t), 100 * MIB + t * 1024) for t in range(0, 600, 2)]  # 1 KiB/s
    assert slope_per_min(samples) == pytest.approx(60 * 1024)
    assert slope_per_min([(0.0, 5)]) == 0.0
    assert slope_per_min([(1.0, 5), (1.0, 9)]) == 0.0


def test_a_soak_that_grows_is_not_flat_and_one_that_wanders_is() -> None:
    growing = RssSampler(pid=0, samples=[(float(t), 100 * MIB + t * 20_000) for t in range(600)])
    summary = growing.summary()
    assert summary["flat"] is False
    assert summary["rss_first"] == 100 * MIB and summary["rss_max"] == summary["rss_last"]
    assert summary["rise_bytes"] == summary["rss_max"] - summary["rss_first"]  # what is judged
    wandering = RssSampler(
        pid=0, samples=[(float(t), 100 * MIB + (t % 7) * 300_000) for t in range(600)]
    )
    assert wandering.summary()["flat"] is True
    assert RssSampler(pid=0).summary() == {"samples": 0, "flat": None}


def test_the_soak_says_what_flat_was_judged_against_and_one_sample_is_not_judged() -> None:
    """A soak that rose 3.96 MiB was "not flat" against 3 % of its first sample, while the
    table said "flat below 4 MiB and 3 %"; one sample was called flat."""
    small = RssSampler(pid=0, samples=[(0.0, 95 * MIB), (2.0, 95 * MIB + 4_149_248)])
    summary = small.summary()
    assert summary["flat_below_bytes"] == pytest.approx(0.03 * 95 * MIB)  # under 4 MiB
    assert summary["flat"] is False
    large = RssSampler(pid=0, samples=[(0.0, 300 * MIB), (2.0, 300 * MIB)]).summary()
    assert large["flat_below_bytes"] == 4 * MIB and large["flat"] is True
    assert RssSampler(pid=0, samples=[(0.0, 99 * MIB)]).summary()["flat"] is None


def test_a_soak_that_dips_and_climbs_back_to_where_it_started_is_flat() -> None:
    """As the acceptance run's soak did: RSS drops early (the allocator returns memory), then
    climbs back to 0.4 MiB above its start. A fitted line rises ~10 MiB; RSS did not."""

    def rss(t: int) -> int:
        return 100 * MIB if t < 30 else 90 * MIB + (t - 30) * int(10.4 * MIB) // 569

    summary = RssSampler(pid=0, samples=[(float(t), rss(t)) for t in range(600)]).summary()
    assert summary["fitted_growth_bytes"] > 4 * MIB
    assert summary["rss_last"] - summary["rss_first"] < MIB
    assert summary["flat"] is True


def test_deep_size_counts_shared_objects_once() -> None:
    shared = "x" * 1000
    once = deep_size({"a": shared})
    assert once >= sys.getsizeof(shared)
    assert deep_size({"a": shared, "b": shared}) < once + sys.getsizeof(shared)
    assert deep_size([("k", 1.5)]) > sys.getsizeof([])
