"""Times `consumers.replay.replay` when the project has it; otherwise says it was not measured."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import time
from typing import Any

from pipeline.settings import Settings


def measure_replay(settings: Settings, events: int) -> dict[str, Any]:
    """Replay this run's topics and report events/s, or why it was not measured.

    Calls `replay(settings, ReplayOptions())` (awaited when it is a coroutine function);
    `events` stands in for the record count when the result carries none.
    """
    try:
        module = importlib.import_module("consumers.replay")
        replay = module.replay
    except (ImportError, AttributeError):
        return {"measured": False, "note": "replay: not measured (consumers.replay.replay absent)"}
    args: list[Any] = [settings]
    if "options" in inspect.signature(replay).parameters:
        args.append(module.ReplayOptions())
    started = time.perf_counter()
    try:
        result = replay(*args)
        if inspect.iscoroutine(result):
            result = asyncio.run(result)
    except Exception as exc:  # the adapter must never sink the rest of the report
        return {"measured": False, "note": f"replay: failed ({type(exc).__name__}: {exc})"}
    elapsed = time.perf_counter() - started
    count = _count(result) or events
    seconds = getattr(result, "elapsed_s", 0.0) or elapsed
    return {"measured": True, "events": count, "seconds": seconds, "events_per_s": count / seconds}


def _count(result: Any) -> int | None:
    for name in ("records", "events", "event_count"):
        value = getattr(result, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None
