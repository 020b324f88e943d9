"""The benchmark's phases on one stack: baseline, end-to-end, under load, memory, replay."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consumers.bench import baseline, faust_reference, report, workload
from consumers.bench.driver import Driver, Run
from consumers.bench.memory import PendingMemory, read_rss
from consumers.bench.replay import measure_replay
from consumers.dev import erp_seed
from consumers.dev.stack import Stack
from pipeline.kafka import make_consumer, partitions_of, stop_consumer
from topics.specs import DIRECTORY, ITEM_ROUTES, TopicSpec

WORKER_NAMES = ("processor", "exporter", "projection")


@dataclass(frozen=True)
class Options:
    """What to run: item counts, item types, the load fraction and how long to hold it."""

    items: int = 2000
    types: tuple[str, ...] = workload.TYPES
    pending: int = 100_000
    load_fraction: float = 0.2
    load_seconds: float = 20.0
    baseline_events: int = 0
    faust_reference: bool = True

    def baseline_count(self) -> int:
        return self.baseline_events or max(5_000, min(50_000, 10 * self.items))


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
    """Every phase in order on `stack`; returns the report (a JSON-ready dict)."""
    settings = stack.settings
    company = f"bench-{uuid.uuid4().hex[:8]}"
    types = options.types
    say(f"baseline: raw hop over {options.baseline_count()} events")
    base = asyncio.run(baseline.measure(settings, options.baseline_count(), types))

    say("seeding the ERP, starting processor, exporter and projection")
    erp_seed.seed(settings.require_erp_database_url(), company)
    worker_dir = Path(settings.data_dir) / "bench" / company
    _start_workers(stack, worker_dir)
    asyncio.run(_setup(stack, company))
    say("warm-up: the anchor project, end to end (waits for the workers to join)")
    warm = asyncio.run(
        _drive(stack, company, [workload.ANCHOR_PROJECT], [workload.anchor(company)], timeout_s=180)
    )
    if warm.final.get(workload.ANCHOR_PROJECT) != "synced":
        raise RuntimeError(f"warm-up item never synced: {warm.final or 'no terminal status'}")

    say(f"end-to-end: {options.items} items as fast as they go")
    idents, events = _batch(company, 0, options.items, types)
    top = asyncio.run(_drive(stack, company, idents, events, timeout_s=120 + options.items * 0.2))
    maximum = report.run_section(top, options.items)

    say(f"foreign partitioner: the same {options.items} items, every record re-routed")
    idents, events = _batch(company, options.items, options.items, types)
    rerouted = asyncio.run(
        _drive(stack, company, idents, events, timeout_s=120 + options.items * 0.2, foreign=True)
    )
    foreign = report.run_section(rerouted, options.items)
    foreign["rerouted_records"] = asyncio.run(_records_on(stack, ITEM_ROUTES))
    foreign["ratio_to_native"] = foreign["items_per_s"] / max(maximum["items_per_s"], 1e-9)
    # end to end, the exporter bounds throughput; submit → ready_to_export is the processor
    # alone, where re-routing costs: the same submissions native, then all re-routed
    say(f"foreign partitioner, processor alone: {options.items} submissions, native then re-routed")
    first = 2 * options.items
    native_ready = asyncio.run(_ready(stack, company, first, options.items, types, foreign=False))
    first += options.items
    foreign_ready = asyncio.run(_ready(stack, company, first, options.items, types, foreign=True))
    foreign["processor_alone"] = {
        "native_ready_per_s": native_ready.ready_per_s(),
        "foreign_ready_per_s": foreign_ready.ready_per_s(),
        "ratio_to_native": foreign_ready.ready_per_s() / max(native_ready.ready_per_s(), 1e-9),
        "native_submit_to_ready_ms": report.latency(native_ready.ready_latencies_ms()),
        "foreign_submit_to_ready_ms": report.latency(foreign_ready.ready_latencies_ms()),
    }
    first += options.items

    rate = max(options.load_fraction * maximum["items_per_s"], 0.5)
    load_items = max(20, min(options.items, int(rate * options.load_seconds)))
    say(f"under load: {load_items} items at {rate:.1f}/s")
    idents, events = _batch(company, first, load_items, types)
    loaded = asyncio.run(
        _drive(stack, company, idents, events, rate=rate, timeout_s=120 + load_items / rate)
    )
    load = report.run_section(loaded, load_items) | {"rate_per_s": rate}

    say(f"memory: {options.pending} items left pending in the processor")
    memory = asyncio.run(_pending(stack, company, first + load_items, options.pending, types))

    say("replay")
    replay = measure_replay(settings)
    stack.stop_workers()
    shutil.rmtree(worker_dir, ignore_errors=True)
    ref: dict[str, Any] = {"measured": False, "note": "faust reference: skipped"}
    if options.faust_reference:
        say("faust reference agent")
        ref = faust_reference.measure(stack, options.baseline_count())
    return {
        "parameters": {
            "items": options.items,
            "types": list(types),
            "pending": options.pending,
            "load_fraction": options.load_fraction,
            "load_items": load_items,
            "baseline_events": options.baseline_count(),
            "topic_prefix": settings.erp_topic_prefix,
        },
        "machine": report.machine(),
        "baseline": {
            "events": base.events,
            "hop_events_per_s": base.hop_events_per_s,
            "consume_events_per_s": base.consume_events_per_s,
        },
        "max": maximum,
        "foreign_partitioner": foreign,
        "load": load,
        "ratio_to_hop": maximum["items_per_s"] / base.hop_events_per_s,
        "memory": {
            "pending": memory.pending,
            "reached": memory.reached,
            "rss_before": memory.before.rss,
            "rss_after": memory.after.rss,
            "peak_after": memory.after.peak,
            "bytes_per_item": memory.bytes_per_item,
        },
        "replay": replay | {"consume_only_events_per_s": base.consume_events_per_s},
        "faust_reference": ref,
    }


async def _records_on(stack: Stack, spec: TopicSpec) -> int:
    """How many records a topic holds (its end offsets summed: nothing is deleted mid-run)."""
    consumer = make_consumer(stack.settings, group_id=None)
    await consumer.start()
    try:
        partitions = await partitions_of(consumer, stack.settings.topic(spec.name))
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await stop_consumer(consumer)


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
    stack: Stack, company: str, first: int, count: int, types: tuple[str, ...]
) -> PendingMemory:
    pid = stack.workers["processor"].pid
    before = read_rss(pid)
    idents, events = _batch(company, first, count, types)
    run = await _drive(
        stack, company, idents, events, approve=False, until="ready", timeout_s=120 + count / 20
    )
    return PendingMemory(count, len(run.ready_ms), before, read_rss(pid))
