"""The benchmark's phases on one stack, in order, and the report they add up to."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from consumers.bench import baseline, broker, faust_reference, report, workload
from consumers.bench.cpu import CpuMeter, embedded_broker_pid, process_state
from consumers.bench.driver import Driver, Run, status_consumer
from consumers.bench.memory import PendingMemory, RssSampler, read_rss, settle, state_sizes
from consumers.bench.replay import measure_replay
from consumers.dev import erp_seed
from consumers.dev.stack import Stack
from consumers.dev.supervise import describe_exit
from pipeline.kafka import make_consumer, partitions_of, stop_consumer
from topics.specs import DIRECTORY, ITEM_ROUTES, STATUS, SUBMISSIONS, TopicSpec

WORKER_NAMES = ("processor", "exporter", "projection")
#: The pending fill gives up after this many seconds plus one per PENDING_MIN_RATE items.
PENDING_FIXED_S = 120.0
PENDING_MIN_RATE = 20.0
#: Most records the faust reference agent is timed over (see `Options.faust_reference_count`).
FAUST_REFERENCE_EVENTS = 5_000
#: How often, in seconds, a phase checks that every worker is still running.
WORKER_CHECK_S = 0.5

T = TypeVar("T")


class WorkerExited(RuntimeError):
    """A worker stopped during the run: what the run measured since is not the pipeline's."""


class WorkerCheck:
    """Checks that every worker of `stack` runs: call it (it raises WorkerExited) before each
    phase and every `WORKER_CHECK_S` within one.

    A worker that exited is named with how it ended. So is one found stopped (SIGSTOP, a
    debugger; /proc state T or t) on two checks in a row: the figures would time its pause.
    A stop shorter than a check interval (a profiler's sample) may go unseen.
    """

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self._stopped: set[str] = set()

    def last(self) -> None:
        """The check after the last phase that needs the workers: a worker seen stopped once
        is looked at again after one interval (no later check would see it twice)."""
        self()
        if self._stopped:
            time.sleep(WORKER_CHECK_S)
            self()

    def __call__(self) -> None:
        for label, process in self.stack.workers.items():
            code = process.poll()
            if code is not None:
                how = describe_exit(code) + (
                    " (stopped as on SIGTERM or Ctrl-C)" if code == 0 else ""
                )
                raise WorkerExited(
                    f"worker {label} (pid {process.pid}) exited during the run: {how}; "
                    "no figures are reported from a broken run"
                )
            if process_state(process.pid) not in ("T", "t"):
                self._stopped.discard(label)
            elif label in self._stopped:
                raise WorkerExited(
                    f"worker {label} (pid {process.pid}) is stopped (SIGSTOP or a debugger); "
                    "no figures are reported from a run that timed its pause"
                )
            else:
                self._stopped.add(label)


async def guarded(check: Callable[[], None], work: Coroutine[Any, Any, T]) -> T:
    """Await `work`, calling `check` (a WorkerCheck) every `WORKER_CHECK_S`.

    Raises what `check` raises (WorkerExited), with `work` cancelled, as soon as it does:
    without it a phase would wait out its timeout and the run would go on to report figures of
    a dead pipeline.
    """
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=WORKER_CHECK_S)
            if done:
                return task.result()
            check()
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait({task})


@dataclass(frozen=True)
class Options:
    """What to run: item counts, item types, the load fraction and how long to hold it (the
    load run lasts `load_seconds` and takes at least `min_samples` items), the RSS sampling
    interval of the soak, and which optional phases run."""

    items: int = 2000
    types: tuple[str, ...] = workload.TYPES
    pending: int = 100_000
    load_fraction: float = 0.2
    load_seconds: float = 600.0
    min_samples: int = 200
    rss_interval_s: float = 2.0
    baseline_events: int = 0
    faust_reference: bool = True
    foreign: bool = True

    def baseline_count(self) -> int:
        return self.baseline_events or max(5_000, min(50_000, 10 * self.items))

    def faust_reference_count(self) -> int:
        """Records the faust reference agent reads: the baseline's, at most
        `FAUST_REFERENCE_EVENTS` (a steady rate from 5 000 records at ~600/s, ~8 s, not
        the ~35 s of 20 000 that the 15-minute acceptance run cannot spare)."""
        return min(self.baseline_count(), FAUST_REFERENCE_EVENTS)


async def _drive(
    stack: Stack,
    company: str,
    idents: list[str],
    events: list[dict[str, Any]],
    *,
    rate: float | None = None,
    approve: bool = True,
    until: str = "terminal",
    timeout_s: float = 120.0,
    foreign: bool = False,
) -> Run:
    async with Driver(stack.settings, company, approve=approve, foreign=foreign) as driver:
        await asyncio.gather(
            driver.submit(list(zip(idents, events, strict=True)), rate),
            driver.watch(set(idents), until, timeout_s),
        )
        return driver.run


def _batch(
    company: str, first: int, count: int, types: tuple[str, ...]
) -> tuple[list[str], list[dict[str, Any]]]:
    indices = range(first, first + count)
    return (
        [workload.item_id(i, types) for i in indices],
        [workload.submission(company, i, types) for i in indices],
    )


async def _setup(stack: Stack, company: str) -> None:
    async with Driver(stack.settings, company) as driver:
        await driver.publish_dicts(DIRECTORY.name, workload.directory(company))


def run_all(stack: Stack, options: Options, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Every phase in order on `stack`; returns the report (a JSON-ready dict).

    Order: baseline, end to end, foreign partitioner, the pending fill (memory), the load run
    that doubles as the soak (with the CPU of each process), one fetch timed per topic,
    replay, faust reference. Workers are stopped and their files removed however it ends.
    `say` gets one progress line per phase (and more within the long ones), each with the
    seconds since the start.
    """
    company = f"bench-{uuid.uuid4().hex[:8]}"
    worker_dir = Path(stack.settings.data_dir) / "bench" / company
    try:
        return _run_all(stack, options, say, company, worker_dir)
    finally:  # interrupted or not: the processor's table files are this run's alone
        stack.stop_workers()
        shutil.rmtree(worker_dir, ignore_errors=True)


def _run_all(
    stack: Stack, options: Options, say: Callable[[str], None], company: str, worker_dir: Path
) -> dict[str, Any]:
    settings = stack.settings
    types = options.types
    check = WorkerCheck(stack)
    clock = _Phases(say, check=check)
    clock.start("baseline", f"baseline: raw hops over {options.baseline_count()} events")
    base = asyncio.run(baseline.measure(settings, options.baseline_count(), types))

    clock.start("start", "seeding the ERP, starting processor, exporter and projection")
    erp_seed.seed(settings.require_erp_database_url(), company)
    _start_workers(stack, worker_dir)
    _guarded_run(check, _setup(stack, company))
    clock.start(
        "warm_up", "warm-up: the anchor project, end to end (waits for the workers to join)"
    )
    warm = _guarded_run(
        check,
        _drive(
            stack, company, [workload.ANCHOR_PROJECT], [workload.anchor(company)], timeout_s=180
        ),
    )
    if warm.final.get(workload.ANCHOR_PROJECT) != "synced":
        raise RuntimeError(f"warm-up item never synced: {warm.final or 'no terminal status'}")

    clock.start("max", f"end-to-end: {options.items} items as fast as they go")
    idents, events = _batch(company, 0, options.items, types)
    top = _guarded_run(
        check, _drive(stack, company, idents, events, timeout_s=120 + options.items * 0.2)
    )
    maximum = report.run_section(top, options.items)
    say(f"  {maximum['items_per_s']:.1f} items/s, {maximum['synced_per_s']:.1f} synced/s")

    foreign: dict[str, Any] | None = None
    first = options.items
    if options.foreign:
        clock.start(
            "foreign",
            f"foreign partitioner: the same {options.items} items, every record re-routed",
        )
        idents, events = _batch(company, first, options.items, types)
        rerouted = _guarded_run(
            check,
            _drive(
                stack, company, idents, events, timeout_s=120 + options.items * 0.2, foreign=True
            ),
        )
        foreign = report.run_section(rerouted, options.items)
        foreign["rerouted_records"] = _guarded_run(check, _records_on(stack, ITEM_ROUTES))
        foreign["ratio_to_native"] = foreign["items_per_s"] / max(maximum["items_per_s"], 1e-9)
        # end to end, the exporter bounds throughput; submit → ready_to_export is the processor
        # alone, where re-routing costs: the same submissions native, then all re-routed
        clock.start(
            "foreign_alone",
            f"foreign partitioner, processor alone: {options.items} submissions, native then"
            " re-routed",
        )
        first += options.items
        native_ready = _guarded_run(
            check, _ready(stack, company, first, options.items, types, foreign=False)
        )
        first += options.items
        foreign_ready = _guarded_run(
            check, _ready(stack, company, first, options.items, types, foreign=True)
        )
        foreign["processor_alone"] = {
            "native_ready_per_s": native_ready.ready_per_s(),
            "foreign_ready_per_s": foreign_ready.ready_per_s(),
            "ratio_to_native": foreign_ready.ready_per_s() / max(native_ready.ready_per_s(), 1e-9),
            "native_submit_to_ready_ms": report.latency(native_ready.ready_latencies_ms()),
            "foreign_submit_to_ready_ms": report.latency(foreign_ready.ready_latencies_ms()),
        }
        first += options.items

    clock.start("pending", f"memory: {options.pending} submissions left pending in ready_to_export")
    memory, fill = _guarded_run(check, _pending(stack, company, first, options.pending, types, say))
    first += options.pending
    say(
        f"  {memory.reached}/{memory.pending} ready at {fill['ready_per_s']:.0f}/s; RSS "
        f"{memory.before.rss / 2**20:.0f} → {memory.after.rss / 2**20:.0f} MiB "
        f"({'settled' if memory.settled else 'not settled'} after {memory.settle_s:.0f}s), "
        f"{memory.bytes_per_item:.0f} B per pending item"
    )
    clock.start(
        "state_sizes",
        "memory: the summary state and the directory, rebuilt by the processor's code",
    )
    sizes = _guarded_run(check, state_sizes(settings))

    rate = max(options.load_fraction * maximum["items_per_s"], 0.5)
    # at least min_samples items in each percentile: accept → synced has only the accepted
    load_items = max(
        workload.items_for_accepted(first, options.min_samples), int(rate * options.load_seconds)
    )
    longer = (
        f" (--min-samples {options.min_samples} makes it longer than --load-seconds)"
        if load_items / rate > options.load_seconds * 1.05
        else ""
    )
    clock.start(
        "load",
        f"under load (soak): {load_items} items at {rate:.1f}/s, "
        f"~{load_items / rate:.0f}s{longer}, processor RSS sampled",
    )
    idents, events = _batch(company, first, load_items, types)
    sampler = RssSampler(stack.workers["processor"].pid, interval_s=options.rss_interval_s)
    meter = CpuMeter(_run_pids(stack))
    meter.start()
    loaded = _guarded_run(check, _soak(stack, company, idents, events, rate, sampler))
    soak_cpu = meter.stop()
    say(
        "  CPU over the soak, share of one core: "
        + ", ".join(
            f"{name} {figures['core_share']:.0%}" for name, figures in soak_cpu["processes"].items()
        )
    )
    load = report.run_section(loaded, load_items) | {"rate_per_s": rate}
    soak = sampler.summary()
    say(
        f"  soak: RSS {soak.get('rss_first', 0) / 2**20:.0f} → "
        f"{soak.get('rss_last', 0) / 2**20:.0f} MiB (max {soak.get('rss_max', 0) / 2**20:.0f}): "
        f"{report.soak_verdict(soak)} (fitted slope "
        f"{soak.get('slope_kib_per_min', 0):.0f} KiB/min)"
    )

    clock.start("broker", "broker: one fetch of a partition's last record, by what it holds")
    fetches = _guarded_run(
        check,
        broker.last_record_fetch(
            settings,
            [
                baseline.private_settings(settings).topic(SUBMISSIONS.name),
                settings.topic(SUBMISSIONS.name),
                settings.topic(STATUS.name),
            ],
        ),
    )
    for row in fetches:
        ms = "-" if row["fetch_ms"] is None else f"{row['fetch_ms']:.1f}"
        say(f"  {row['topic']}[{row['partition']}]: {row['end_offset']} end offset, {ms} ms")

    clock.start("replay", "replay")
    replay = _guarded_run(check, measure_replay(settings))
    check.last()  # each figure above came from a running pipeline
    clock.start("stop", "stopping the workers (the faust reference runs alone)")
    stack.stop_workers()  # run_all removes their files
    ref: dict[str, Any] = {"measured": False, "note": "faust reference: skipped"}
    if options.faust_reference:
        clock.start("faust_reference", "faust reference agent")
        ref = faust_reference.measure(stack, options.faust_reference_count())
    clock.stop()
    out: dict[str, Any] = {
        "parameters": {
            "items": options.items,
            "types": list(types),
            "pending": options.pending,
            "load_fraction": options.load_fraction,
            "load_seconds": options.load_seconds,
            "load_items": load_items,
            "min_samples": options.min_samples,
            "baseline_events": options.baseline_count(),
            "faust_reference_events": (
                options.faust_reference_count() if options.faust_reference else None
            ),
            "topic_prefix": settings.erp_topic_prefix,
        },
        "machine": report.machine(),
        "phase_seconds": clock.seconds,
        "baseline": {
            "events": base.events,
            "hop_events_per_s": base.hop_events_per_s,
            "hop_one_record_events_per_s": base.hop_one_record_events_per_s,
            "consume_events_per_s": base.consume_events_per_s,
        },
        "max": maximum,
        "load": load,
        "soak": soak,
        # items/s end to end against the honest hop's events/s (and the one-record hop's)
        "ratio_to_hop": maximum["items_per_s"] / base.hop_events_per_s,
        "ratio_to_one_record_hop": maximum["items_per_s"] / base.hop_one_record_events_per_s,
        "memory": {
            "pending": memory.pending,
            "reached": memory.reached,
            "rss_before": memory.before.rss,
            "rss_after": memory.after.rss,
            "peak_after": memory.after.peak,
            "settled": memory.settled,
            "settle_seconds": memory.settle_s,
            "bytes_per_item": memory.bytes_per_item,
            "fill": fill,
            **sizes,
        },
        "replay": replay
        | {
            "consume_only_events_per_s": base.consume_events_per_s,
            "ratio_to_consume_only": (
                replay["events_per_s"] / base.consume_events_per_s if replay["measured"] else None
            ),
        },
        "broker_fetch": fetches,
        "soak_cpu": soak_cpu,
        "faust_reference": ref
        | {
            "ratio": (
                maximum["processor_events_per_s"] / ref["events_per_s"]
                if ref.get("measured")
                else None
            )
        },
    }
    if foreign is not None:
        out["foreign_partitioner"] = foreign
    out["targets"] = report.targets(out)
    return out


def _guarded_run(check: Callable[[], None], work: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(work)`, stopped with WorkerExited as soon as `check` finds a worker gone."""
    return asyncio.run(guarded(check, work))


class _Phases:
    """Names the phase under way, with the seconds since the run started; keeps each
    phase's duration. `check` runs before each phase starts (raising stops the run)."""

    def __init__(
        self, say: Callable[[str], None], check: Callable[[], None] = lambda: None
    ) -> None:
        self.say = say
        self.check = check
        self.started = self.phase_started = time.monotonic()
        self.current: str | None = None
        self.seconds: dict[str, float] = {}

    def start(self, name: str, text: str) -> None:
        self.check()
        self.stop()
        self.current, self.phase_started = name, time.monotonic()
        self.say(f"[{self.phase_started - self.started:5.0f}s] {text}")

    def stop(self) -> None:
        if self.current is not None:
            spent = time.monotonic() - self.phase_started
            self.seconds[self.current] = self.seconds.get(self.current, 0.0) + spent
            self.current = None


async def _records_on(stack: Stack, spec: TopicSpec) -> int:
    """How many records a topic holds (its end offsets summed: nothing is deleted mid-run)."""
    consumer = make_consumer(stack.settings, group_id=None)
    await consumer.start()
    try:
        partitions = await partitions_of(consumer, stack.settings.topic(spec.name))
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await stop_consumer(consumer)


def _run_pids(stack: Stack) -> dict[str, int]:
    """The processes whose CPU the soak is measured on: the embedded broker (when this run
    started it), each worker and this process (the load driver and the watchers)."""
    pids = {name: process.pid for name, process in stack.workers.items()}
    broker_pid = embedded_broker_pid()
    if broker_pid is not None:
        pids = {"broker": broker_pid, **pids}
    return pids | {"bench": os.getpid()}


def _start_workers(stack: Stack, data_dir: Path) -> None:
    """Start the workers with a data directory of their own.

    The processor's RocksDB files are named after the table, not the topic prefix: offsets
    left there by an earlier run on a since-restarted broker would stop it.
    """
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    # Stack.env() hands this process's environment to its workers
    previous = os.environ.get("DATA_DIR")
    os.environ["DATA_DIR"] = str(data_dir)
    try:
        for name in WORKER_NAMES:
            stack.start_worker(name)
    finally:
        if previous is None:
            del os.environ["DATA_DIR"]
        else:
            os.environ["DATA_DIR"] = previous


async def _ready(
    stack: Stack, company: str, first: int, count: int, types: tuple[str, ...], *, foreign: bool
) -> Run:
    """`count` submissions until each is ready_to_export (left there), with or without
    `foreign_partitioner`."""
    idents, events = _batch(company, first, count, types)
    return await _drive(
        stack,
        company,
        idents,
        events,
        approve=False,
        until="ready",
        timeout_s=120 + count * 0.2,
        foreign=foreign,
    )


async def _pending(
    stack: Stack,
    company: str,
    first: int,
    count: int,
    types: tuple[str, ...],
    say: Callable[[str], None],
) -> tuple[PendingMemory, dict[str, Any]]:
    """`count` submissions published by a batching raw producer, waited for until each is
    ready_to_export (counted on erp.status, not decoded), then the processor's RSS once it
    settled. Returns the memory figures and the fill's timings."""
    pid = stack.workers["processor"].pid
    settings = stack.settings
    before = read_rss(pid)
    records = [
        (_key_of(event), json.dumps(event).encode())
        for event in (workload.submission(company, i, types) for i in range(first, first + count))
    ]
    consumer = await status_consumer(settings)
    try:
        started = time.monotonic()
        await baseline.fill(settings, settings.topic(SUBMISSIONS.name), records)
        produced_s = time.monotonic() - started
        say(f"  {count} submissions produced in {produced_s:.1f}s; waiting for ready_to_export")
        marker = b'"ready_to_export"'
        owner = f'"{company}"'.encode()
        ready = 0
        deadline = started + PENDING_FIXED_S + count / PENDING_MIN_RATE
        shown = started
        while ready < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            for batch in batches.values():
                ready += sum(1 for r in batch if r.value and marker in r.value and owner in r.value)
            if time.monotonic() - shown >= 10:
                shown = time.monotonic()
                say(f"  {ready}/{count} ready after {shown - started:.0f}s")
        ready_s = time.monotonic() - started
    finally:
        await stop_consumer(consumer)
    after, settled, settle_s = await settle(pid)
    fill = {
        "produce_seconds": produced_s,
        "ready_seconds": ready_s,
        "ready_per_s": ready / max(ready_s, 1e-9),
    }
    return PendingMemory(count, min(ready, count), before, after, settled, settle_s), fill


def _key_of(event: dict[str, Any]) -> bytes:
    item = event["item"]
    return f"{event['company_id']}:{item['type']}:{item['id']}".encode()


async def _soak(
    stack: Stack,
    company: str,
    idents: list[str],
    events: list[dict[str, Any]],
    rate: float,
    sampler: RssSampler,
) -> Run:
    """The load run at `rate` items/s with the processor's RSS sampled throughout."""
    sampling = asyncio.create_task(sampler.run())
    try:
        return await _drive(
            stack, company, idents, events, rate=rate, timeout_s=120 + len(idents) / rate
        )
    finally:
        sampling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampling
