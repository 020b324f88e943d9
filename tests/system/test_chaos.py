"""Chaos: mixed items flow while a random worker is SIGKILLed and restarted every few seconds,
and the processor is made to exit at every point of its batched step in turn."""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass, field

import pytest

from pipeline.processor.step import CRASH_EXIT_CODE
from tests.support import system_invariants as invariants
from tests.support.kafka import publish_all
from tests.support.system import NAMES, System, env_flag
from tests.support.system_scripts import (
    add_late_vendor,
    first_phase,
    prepare_company,
    scripted,
    second_phase,
)
from tests.support.waiting import eventually

COMPANY = "sys-chaos"
#: Items in the run (the full-size run is 5000; the default fits a 2-core machine in ~90 s).
ITEMS = env_flag("SYSTEM_CHAOS_ITEMS", 500)
#: How long each phase may take to settle, growing with the run's size.
SETTLE_S = 150 + ITEMS * 0.12

pytestmark = pytest.mark.timeout(250 + 2 * SETTLE_S)
#: Seconds between kills, and kills per phase: kills come while work is in flight, then stop so
#: that the groups settle (unbounded kills of 8 workers on 6 s sessions rebalance forever).
KILL_EVERY_S = float(os.environ.get("SYSTEM_CHAOS_KILL_EVERY_S", "2"))
KILLS_PER_PHASE = env_flag("SYSTEM_CHAOS_KILLS_PER_PHASE", 5)
#: The points of the processor's batched step it is made to exit at (`PROCESSOR_CRASH_AT`,
#: the rows of the crash table in docs/reliability.md), each once in the run.
CRASH_POINTS = ("stored", "durable", "sent", "cleared", "checkpointed")


@dataclass
class CrashPoints:
    """The crash points still to fire, those fired, and the processors' batches seen."""

    todo: list[str]
    fired: list[str] = field(default_factory=list)
    armed: dict[str, str] = field(default_factory=dict)
    #: (batches, of them with more than one record, records) of each processor instance,
    #: read just before it was killed and at the end
    batches: list[tuple[int, int, int]] = field(default_factory=list)
    unexpected: dict[str, int] = field(default_factory=dict)

    def next_point(self) -> dict[str, str]:
        """The environment arming a processor start with a point not yet fired (if any)."""
        free = [p for p in self.todo if p not in self.armed.values()] or self.todo
        return {"PROCESSOR_CRASH_AT": free[0]} if free else {}


class Chaos:
    """A thread that SIGKILLs worker instances one after another and restarts each at once.

    Every kind of worker is killed once per phase (`first` leads, the rest in random order,
    the instance chosen at random), then random ones up to `KILLS_PER_PHASE`. Leaving the
    block waits for the remaining kills, so each phase gets all of them.
    """

    def __init__(self, system: System, seed: int, first: str, points: CrashPoints) -> None:
        self.system = system
        self.points = points
        self.stopping = threading.Event()
        self.rng = random.Random(seed)
        kinds = [name for name in NAMES if name != first]
        self.rng.shuffle(kinds)
        self.order = [first, *kinds]
        self.order += [self.rng.choice(NAMES) for _ in range(KILLS_PER_PHASE - len(self.order))]
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Chaos:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(KILLS_PER_PHASE * KILL_EVERY_S * 2 + 60)

    def _run(self) -> None:
        for name in self.order:
            until = time.monotonic() + self.rng.uniform(0.5, 1.5) * KILL_EVERY_S
            while time.monotonic() < until:
                self._revive()
                time.sleep(0.1)
            label = f"{name}-{self.rng.choice((1, 2))}"
            if name == "processor" and (seen := self.system.batches(label)) is not None:
                self.points.batches.append(seen)
            self.system.kill(label)
            self._start(label)
        while not self.stopping.wait(0.2):
            self._revive()

    def _start(self, label: str) -> None:
        """Restart an instance; a processor armed with the next crash point, if any is left."""
        if label.startswith("processor-"):
            env = self.points.next_point()
            self.points.armed.pop(label, None)
            if env:
                self.points.armed[label] = env["PROCESSOR_CRASH_AT"]
            self.system.start(label, **env)
        else:
            self.system.start(label)

    def _revive(self) -> None:
        """Restart a processor that exited at its crash point (any other exit is noted)."""
        for label, code in self.system.exited().items():
            point = self.points.armed.pop(label, None)
            if code == CRASH_EXIT_CODE and point is not None:
                if point in self.points.todo:
                    self.points.todo.remove(point)
                self.points.fired.append(point)
            else:
                self.points.unexpected[label] = code
            self._start(label)


def test_nothing_lost_or_doubled_while_workers_are_killed(system: System) -> None:
    prepare_company(system, COMPANY)
    items = scripted(COMPANY, ITEMS)
    seed = random.randrange(1 << 30)
    points = CrashPoints(random.Random(seed).sample(CRASH_POINTS, len(CRASH_POINTS)))
    started = time.monotonic()
    with Chaos(system, seed, first="exporter", points=points):
        publish_all(system.settings, [r for item in items for r in first_phase(item)])
        eventually(
            lambda: invariants.final_statuses_reached(system, items, "first"),
            timeout=SETTLE_S,
            interval=0.5,
            message=lambda: invariants.lagging(system, items, "first"),
        )
    add_late_vendor(system, COMPANY)
    with Chaos(system, seed + 1, first="processor", points=points):
        publish_all(system.settings, [r for item in items for r in second_phase(item)])
        eventually(
            lambda: invariants.final_statuses_reached(system, items),
            timeout=SETTLE_S,
            interval=0.5,
            message=lambda: invariants.lagging(system, items),
        )
    for label in ("processor-1", "processor-2"):
        if (seen := system.batches(label)) is not None:
            points.batches.append(seen)
    for label in list(points.armed):  # the suite's later tests run without a crash point
        system.kill(label)
        system.start(label)
        del points.armed[label]
    batches, several, records = (sum(column) for column in zip(*points.batches, strict=True))
    print(
        f"chaos: {ITEMS} items, seed {seed}, kills {system.kills},"
        f" crash points fired {points.fired} (not fired: {points.todo}),"
        f" processor batches {batches} ({several} of several records, {records} records),"
        f" {time.monotonic() - started:.0f}s"
    )
    assert {label.rpartition("-")[0] for label in system.kills} == set(NAMES)
    assert not points.unexpected, f"workers exited on their own: {points.unexpected}"
    assert points.fired, "no processor reached a crash point in a batch of several records"
    assert several > 0, "the processors never applied a batch of more than one record"
    invariants.check_statuses(system, items)
    invariants.check_erp(system, items)
    invariants.check_mail(system, items)
