"""The benchmark report: percentiles, the JSON document and the table printed for people."""

from __future__ import annotations

import math
import os
import platform
from importlib import metadata
from typing import Any

from consumers.bench.driver import Run

PACKAGES = ("erp-pipeline", "aiokafka", "faust-streaming", "pydantic", "psycopg", "rocksdict")


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def latency(values: list[float]) -> dict[str, float | None]:
    return {f"p{q}": percentile(values, q) for q in (50, 95, 99)} | {"count": float(len(values))}


def run_section(run: Run, items: int) -> dict[str, Any]:
    """What one end-to-end run measured, with the counts that must add up."""
    finals: dict[str, int] = {}
    for status in run.final.values():
        finals[status] = finals.get(status, 0) + 1
    return {
        "items": items,
        "submitted": len(run.submitted_ms),
        "ready_to_export": len(run.ready_ms),
        "accepted": len(run.accepted),
        "rejected_by_approver": len(run.decided_ms) - len(run.accepted),
        "terminal": len(run.final),
        "final_statuses": finals,
        "items_per_s": run.items_per_s(),
        "submit_to_ready_ms": latency(run.ready_latencies_ms()),
        "accept_to_synced_ms": latency(run.synced_latencies_ms()),
    }


def machine() -> dict[str, Any]:
    """Cores, Python and the versions of the packages that bound the figures."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """(measure, figure) lines of the report, in reading order."""
    base = report["baseline"]
    out = [
        (
            "machine",
            f"{report['machine']['cpu_count']} cores, Python {report['machine']['python']}",
        ),
        ("baseline consume-only", f"{base['consume_events_per_s']:.0f} events/s"),
        ("baseline consume→decode→produce", f"{base['hop_events_per_s']:.0f} events/s"),
    ]
    for name in ("max", "load"):
        section = report[name]
        label = "end-to-end" if name == "max" else f"at {section.get('rate_per_s', 0):.1f} items/s"
        out += [
            (f"{label}: items/s", f"{section['items_per_s']:.1f}"),
            (
                f"{label}: terminal",
                f"{section['terminal']}/{section['items']} {section['final_statuses']}",
            ),
            (
                f"{label}: submit→ready p50/p95/p99 ms",
                "/".join(_ms(section["submit_to_ready_ms"][f"p{q}"]) for q in (50, 95, 99)),
            ),
            (
                f"{label}: accept→synced p50/p95/p99 ms",
                "/".join(_ms(section["accept_to_synced_ms"][f"p{q}"]) for q in (50, 95, 99)),
            ),
        ]
    out.append(("end-to-end ÷ baseline hop", f"{report['ratio_to_hop']:.3f}"))
    foreign = report.get("foreign_partitioner")
    if foreign is not None:
        out += [
            ("foreign partitioner (all re-routed): items/s", f"{foreign['items_per_s']:.1f}"),
            (
                "foreign partitioner: terminal",
                f"{foreign['terminal']}/{foreign['items']} {foreign['final_statuses']}",
            ),
            (
                "foreign partitioner: submit→ready p50/p95/p99 ms",
                "/".join(_ms(foreign["submit_to_ready_ms"][f"p{q}"]) for q in (50, 95, 99)),
            ),
            ("foreign partitioner ÷ native items/s", f"{foreign['ratio_to_native']:.3f}"),
        ]
        alone = foreign["processor_alone"]
        out += [
            (
                "processor alone: submissions ready/s native, re-routed",
                f"{alone['native_ready_per_s']:.1f}, {alone['foreign_ready_per_s']:.1f}",
            ),
            ("processor alone: re-routed ÷ native", f"{alone['ratio_to_native']:.3f}"),
        ]
    mem = report["memory"]
    out.append(
        (
            f"processor memory, {mem['reached']}/{mem['pending']} pending",
            f"RSS {mem['rss_before'] / 2**20:.0f}→{mem['rss_after'] / 2**20:.0f} MiB, "
            f"peak {mem['peak_after'] / 2**20:.0f} MiB, {mem['bytes_per_item']:.0f} B/item",
        )
    )
    replay = report["replay"]
    out.append(
        (
            "replay",
            f"{replay['events_per_s']:.0f} events/s" if replay["measured"] else replay["note"],
        )
    )
    ref = report["faust_reference"]
    out.append(
        (
            "faust reference agent",
            f"{ref['events_per_s']:.0f} events/s" if ref.get("measured") else ref.get("note", "-"),
        )
    )
    return out


def print_table(report: dict[str, Any]) -> None:
    """The report as a table on stdout (rich when available)."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        for name, value in rows(report):
            print(f"{name:<45} {value}")
        return
    table = Table(title="erp-pipeline bench")
    table.add_column("measure")
    table.add_column("figure", justify="right")
    for name, value in rows(report):
        table.add_row(name, value)
    Console(width=140).print(table)
