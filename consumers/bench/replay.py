"""The benchmark's replay phase: `erp-pipeline replay` over this run's topics, in events/s."""

from __future__ import annotations

import asyncio
import io
import re
from typing import Any

from consumers.replay.read import ReplayOptions, replay
from pipeline.settings import Settings

#: The replay's last progress line: its reading time, counted from the first fetch (the
#: consumer already started, assigned and positioned), to the last record decoded.
_DONE = re.compile(r"replay: read (\d+) events in ([0-9.]+)s")


def measure_replay(settings: Settings) -> dict[str, Any]:
    """Replay this run's topics with no side effects and report records/s.

    Returns `{"measured": True, "events": N, "seconds": S, "events_per_s": N / S,
    "timing": ...}` where S is the time from the first fetch to the last record decoded
    (consumer start-up and the rebuild after reading excluded) when the replay reports it,
    else the replay's whole elapsed time (`timing` says which); `{"measured": False,
    "note": ...}` when the replay failed, so that the rest of the report is still printed.
    """
    progress = io.StringIO()
    try:
        result = asyncio.run(replay(settings, ReplayOptions(progress=progress)))
    except Exception as exc:  # the benchmark must never sink the rest of the report
        return {"measured": False, "note": f"replay: failed ({type(exc).__name__}: {exc})"}
    done = _DONE.search(progress.getvalue())
    if done is not None and float(done.group(2)) > 0:
        # dead letters included: the line counts every record read
        events, seconds = int(done.group(1)), float(done.group(2))
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
