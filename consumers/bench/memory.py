"""Processor memory: RSS from /proc (sampled, settled); sizes of its summary state and directory."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.processor.replicas import TopicReplica
from pipeline.processor.summaries import apply_notification
from pipeline.rules.directory import Directory
from pipeline.rules.summary import SummaryState
from pipeline.settings import Settings
from topics.specs import DIRECTORY, NOTIFICATIONS, STATUS

#: A soak is "flat" when RSS rose by less than both of these above its first sample, at the end
#: and at its highest.
FLAT_GROWTH_BYTES = 4 * 2**20
FLAT_GROWTH_FRACTION = 0.03


@dataclass(frozen=True)
class Rss:
    """Current (VmRSS) and peak (VmHWM) resident set size, in bytes."""

    rss: int
    peak: int


def read_rss(pid: int) -> Rss:
    """VmRSS and VmHWM of a live process (Linux)."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) * 1024
    return Rss(fields["VmRSS"], fields["VmHWM"])


def slope_per_min(samples: list[tuple[float, int]]) -> float:
    """Least-squares slope of (seconds, bytes) samples, in bytes per minute (0 for < 2)."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    if var == 0:
        return 0.0
    cov = sum((t - mean_t) * (v - mean_v) for t, v in samples)
    return cov / var * 60


@dataclass
class RssSampler:
    """Samples a process's RSS every `interval_s` while `run` is awaited (cancel to stop)."""

    pid: int
    interval_s: float = 1.0
    samples: list[tuple[float, int]] = field(default_factory=list)

    async def run(self) -> None:
        """Sample until cancelled; a vanished process ends the sampling."""
        started = time.monotonic()
        while True:
            try:
                rss = read_rss(self.pid).rss
            except (OSError, KeyError):
                return
            self.samples.append((time.monotonic() - started, rss))
            await asyncio.sleep(self.interval_s)

    def summary(self) -> dict[str, Any]:
        """first / last / max RSS (bytes), how far it rose, the fitted slope (KiB/min) and
        the verdict.

        Flat: RSS at the end and at its highest rose above the first sample by less than
        `FLAT_GROWTH_BYTES` and less than `FLAT_GROWTH_FRACTION` of it. (A least-squares fit
        is reported but does not judge: RSS that dips while the allocator returns memory and
        climbs back to where it started fits a rising line, as a leak would.)
        """
        if not self.samples:
            return {"samples": 0, "flat": None}
        values = [v for _, v in self.samples]
        span_s = self.samples[-1][0] - self.samples[0][0]
        slope = slope_per_min(self.samples)
        growth = slope * span_s / 60
        rise = max(values) - values[0]  # the highest is at or above the last
        bound = min(FLAT_GROWTH_BYTES, FLAT_GROWTH_FRACTION * values[0])
        flat = rise < bound if len(values) > 1 else None  # one sample shows no change
        return {
            "samples": len(values),
            "seconds": span_s,
            "rss_first": values[0],
            "rss_last": values[-1],
            "rss_max": max(values),
            "rise_bytes": rise,
            "flat_below_bytes": bound,
            "slope_kib_per_min": slope / 1024,
            "fitted_growth_bytes": growth,
            "flat": flat,
        }


async def settle(
    pid: int, *, window_s: float = 10.0, tolerance: int = 2**20, deadline_s: float = 120.0
) -> tuple[Rss, bool, float]:
    """Poll a process's RSS until it moved less than `tolerance` bytes over `window_s`.

    Returns the settled reading, whether it settled before `deadline_s`, and the wait.
    """
    started = time.monotonic()
    seen: list[tuple[float, int]] = []
    while True:
        now = time.monotonic() - started
        reading = read_rss(pid)
        seen.append((now, reading.rss))
        recent = [v for t, v in seen if t >= now - window_s]
        if now >= window_s and max(recent) - min(recent) < tolerance:
            return reading, True, now
        if now >= deadline_s:
            return reading, False, now
        await asyncio.sleep(1.0)


def deep_size(root: object) -> int:
    """Bytes of `root` and every object it reaches through containers and slots (each object
    counted once, so shared or interned strings count once; classes and modules skipped)."""
    seen: set[int] = set()
    total = 0
    stack: list[object] = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type) or type(obj).__name__ == "module":
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(_children(obj))
    return total


def _children(obj: object) -> Iterable[object]:
    if isinstance(obj, dict):
        return [*obj.keys(), *obj.values()]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return obj
    if isinstance(obj, (str, bytes, int, float, bool)) or obj is None:
        return ()
    children: list[object] = []
    if hasattr(obj, "__dict__"):
        children.append(vars(obj))
    for cls in type(obj).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if hasattr(obj, name):
                children.append(getattr(obj, name))
    return children


async def _replay_into(settings: Settings, spec: Any, apply: Any) -> None:
    replica = TopicReplica(settings, spec, apply)
    await replica.start()
    try:
        while not await replica.sync(60.0):
            pass
    finally:
        await replica.stop()


async def state_sizes(settings: Settings) -> dict[str, Any]:
    """The processor's in-memory state rebuilt here by its own replicas and rules: the
    summary state (from erp.status and erp.notifications) and the directory, with their
    sizes in bytes (`deep_size`) and entry counts."""
    summaries = SummaryState()
    directory = Directory()
    await _replay_into(settings, DIRECTORY, directory.apply)
    await _replay_into(settings, STATUS, summaries.apply_status)
    await _replay_into(settings, NOTIFICATIONS, lambda e: apply_notification(summaries, e))
    return {
        "summary_items": len(summaries.latest),
        "summary_ready_items": len(summaries.ready),
        "summary_bytes": deep_size(summaries),
        "directory_entries": len(directory.latest),
        "directory_bytes": deep_size(directory),
    }


@dataclass(frozen=True)
class PendingMemory:
    """The processor before and after taking `pending` items into ready_to_export, the
    after-reading taken once its RSS settled."""

    pending: int
    reached: int
    before: Rss
    after: Rss
    settled: bool = True
    settle_s: float = 0.0

    @property
    def bytes_per_item(self) -> float:
        """Growth of the resident set per pending item."""
        return (self.after.rss - self.before.rss) / max(self.reached, 1)
