"""The soak's CPU figures (a process's CPU seconds from /proc, as a share of one core) and
the broker fetch timing's failure path."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time

from consumers.bench import broker
from consumers.bench.cpu import CpuMeter, children, cpu_seconds, embedded_broker_pid
from consumers.dev.services import free_port
from pipeline.settings import Settings


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_a_busy_process_shows_its_cpu_seconds_and_share_of_a_core() -> None:
    before = cpu_seconds(os.getpid())
    assert before is not None
    meter = CpuMeter({"me": os.getpid(), "gone": 2**22 + 12345})
    meter.start()
    _spin(0.3)
    figures = meter.stop()
    me = figures["processes"]["me"]
    assert me["cpu_s"] >= 0.25  # clock ticks: 10 ms each
    assert 0 < me["core_share"] <= 1.2 and figures["seconds"] >= me["cpu_s"] * 0.8
    assert "gone" not in figures["processes"]  # a process that cannot be read is left out


def test_children_are_found_by_parent_and_named_and_the_broker_among_them_by_name() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        mine = children(os.getpid())
        assert mine[child.pid] == "sleep"
        assert child.pid not in children(child.pid)
        found = embedded_broker_pid()  # the suite's own broker may be one of them
        assert found is None or mine[found].startswith("tansu")
    finally:
        child.kill()
        child.wait()


def test_the_fetch_timing_of_an_unreachable_broker_is_empty_not_an_error() -> None:
    """The figure is one of many: a broker that cannot be asked must not sink the report."""
    settings = Settings(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}", erp_topic_prefix="t.")
    assert asyncio.run(broker.last_record_fetch(settings, ["t.erp.status"])) == []
