"""The benchmark's replay phase: `erp-pipeline replay` over this run's topics, in events/s."""

from __future__ import annotations

import asyncio
from typing import Any

from consumers.replay.read import ReplayOptions, replay
from pipeline.settings import Settings


def measure_replay(settings: Settings) -> dict[str, Any]:
    """Replay this run's topics with no side effects and report records/s.

    Returns `{"measured": True, "events": N, "seconds": S, "events_per_s": N / S}` where S is
    the replay's own elapsed time; `{"measured": False, "note": ...}` when the replay failed,
    so that the rest of the report is still printed.
    """
    try:
        result = asyncio.run(replay(settings, ReplayOptions()))
    except Exception as exc:  # the benchmark must never sink the rest of the report
        return {"measured": False, "note": f"replay: failed ({type(exc).__name__}: {exc})"}
    seconds = max(result.elapsed_s, 1e-9)
    return {
        "measured": True,
        "events": result.records,
        "seconds": seconds,
        "events_per_s": result.records / seconds,
    }
