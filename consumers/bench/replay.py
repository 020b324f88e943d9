"""The benchmark's replay phase: `erp-pipeline replay` over this run's topics, in events/s."""

from __future__ import annotations

from typing import Any

from consumers.replay.read import ReplayOptions, replay
from pipeline.settings import Settings


async def measure_replay(settings: Settings) -> dict[str, Any]:
    """Replay this run's topics with no side effects and report records/s.

    Returns `{"measured": True, "events": N, "seconds": S, "events_per_s": N / S,
    "timing": ...}` where S is the replay's `reading_s`, from the first fetch to the last
    record decoded (consumer start-up and the rebuild after reading excluded), or its whole
    elapsed time if that is zero (`timing` says which); `{"measured": False, "note": ...}`
    when the replay failed, so that the rest of the report is still printed.
    """
    try:
        result = await replay(settings, ReplayOptions())
    except Exception as exc:  # the benchmark must never sink the rest of the report
        return {"measured": False, "note": f"replay: failed ({type(exc).__name__}: {exc})"}
    if result.reading_s > 0:
        events, seconds = result.read_events, result.reading_s  # dead letters included
        timing = "first fetch to last record decoded"
    else:
        events, seconds = result.records, max(result.elapsed_s, 1e-9)
        timing = "whole replay, start-up included"
    return {
        "measured": True,
        "events": events,
        "seconds": seconds,
        "whole_seconds": result.elapsed_s,
        "timing": timing,
        "events_per_s": events / seconds,
    }
