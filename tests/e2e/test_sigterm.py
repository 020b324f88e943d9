"""SIGTERM stops a command's embedded services as Ctrl-C does: nothing is left running."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from consumers.dev.stack import Stack
from tests.support.processes import spawn
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(180)


def _children(pid: int) -> set[int]:
    """Processes whose parent is `pid` (read from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the fields after the command name (which may hold spaces) start with state, ppid
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _command_of(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to find child processes")
def test_bench_stopped_with_sigterm_leaves_no_embedded_broker(stack: Stack, tmp_path: Path) -> None:
    env = {**stack.env(), "DATA_DIR": str(tmp_path), "KAFKA_SESSION_TIMEOUT_MS": "6000"}
    env.pop("KAFKA_BOOTSTRAP_SERVERS")  # so that bench starts an embedded broker of its own
    bench = spawn(env, "bench", "--items", "50", stdout=subprocess.DEVNULL)
    try:
        brokers = eventually(
            lambda: {p for p in _children(bench.pid) if "broker" in _command_of(p)},
            timeout=60,
            message="bench never started its embedded broker",
        )
        os.kill(bench.pid, signal.SIGTERM)
        bench.wait(60)
        eventually(
            lambda: not any(_alive(p) for p in brokers),
            timeout=30,
            message=f"the embedded broker {brokers} outlived bench",
        )
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
