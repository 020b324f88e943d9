"""Times `consumers.replay.replay` when the project has it; otherwise says it was not measured."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import time
from typing import Any

from pipeline.settings import Settings


def measure_replay(settings: Settings, events: int) -> dict[str, Any]:
    """Run the replay over this run's topics and report events/s, or why it was not measured.

    `events` is how many records the topics held, used when replay reports no count itself.
    """
    try:
        replay = importlib.import_module("consumers.replay").replay
    except (ImportError, AttributeError):
        return {"measured": False, "note": "replay: not measured (consumers.replay.replay absent)"}
    started = time.perf_counter()
    try:
        result = replay(settings)
        if inspect.iscoroutine(result):
            result = asyncio.run(result)
    except Exception as exc:  # the adapter must never sink the rest of the report
        return {"measured": False, "note": f"replay: failed ({type(exc).__name__}: {exc})"}
    elapsed = time.perf_counter() - started
    count = _count(result) or events
    return {"measured": True, "events": count, "seconds": elapsed, "events_per_s": count / elapsed}


def _count(result: Any) -> int | None:
    for name in ("events", "event_count", "records"):
        value = getattr(result, name, None)
        if isinstance(value, int):
            return value
    return None
