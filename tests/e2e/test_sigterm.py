"""SIGTERM stops what a command started as Ctrl-C does: nothing is left running.

Every command that starts embedded services or workers: `dev`, `demo`, `bench`, and the mail
sink worker (`run mailsink`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import uuid
from pathlib import Path

import pytest

from consumers.bench.cpu import children
from consumers.dev.services import free_port
from consumers.dev.stack import Stack
from tests.support.processes import spawn, wait_for_output
from tests.support.waiting import eventually

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to find child processes"),
]


def _children(pid: int) -> set[int]:
    """Processes whose parent is `pid` (read from /proc)."""
    return set(children(pid))


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


def _started(pid: int, workers: int) -> dict[int, str]:
    """The children of `pid` once its embedded broker and `workers` workers run: pid → command."""

    def all_there() -> dict[int, str] | None:
        found = {child: _command_of(child) for child in _children(pid)}
        brokers = [c for c in found.values() if "broker" in c]
        running = [c for c in found.values() if " run " in c]
        return found if brokers and len(running) >= workers else None

    return eventually(all_there, timeout=180, message=f"{pid} never started its broker/workers")


def _nothing_left(started: dict[int, str], command: str) -> None:
    eventually(
        lambda: not any(_alive(p) for p in started),
        timeout=30,
        message=lambda: (
            f"outlived {command}: " + str({p: c for p, c in started.items() if _alive(p)})
        ),
    )


def _postmaster_pid(data_dir: Path) -> list[Path]:
    return list((data_dir / "postgres").rglob("postmaster.pid"))


def _embedded_env(stack: Stack, data_dir: Path, *, postgres: bool) -> dict[str, str]:
    """`stack`'s environment without a broker (and without a database when `postgres`), so that
    the command starts embedded ones, with topics and a data directory of its own."""
    env = {
        **stack.env(),
        "DATA_DIR": str(data_dir),
        "ERP_TOPIC_PREFIX": f"sig{uuid.uuid4().hex[:6]}.",
        "KAFKA_SESSION_TIMEOUT_MS": "6000",
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "SMTP_URL", "METRICS_PORT"):
        env.pop(name, None)
    if postgres:
        env.pop("DATABASE_URL")
        env.pop("ERP_DATABASE_URL", None)
    return env


def test_dev_stopped_with_sigterm_stops_workers_broker_and_postgres(
    stack: Stack, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    output = tmp_path / "dev.out"
    with output.open("wb") as out:
        dev = spawn(
            _embedded_env(stack, data_dir, postgres=True),
            "dev",
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        wait_for_output(output, r"^ERP pipeline is running:", timeout=240, process=dev)
        started = _started(dev.pid, workers=4)
        assert _postmaster_pid(data_dir), "the embedded PostgreSQL is not running"
        dev.send_signal(signal.SIGTERM)
        assert dev.wait(90) == 0
        _nothing_left(started, "dev")
        assert _postmaster_pid(data_dir) == [], "the embedded PostgreSQL outlived dev"
        assert "\nstopped.\n" in output.read_text()
    finally:
        if dev.poll() is None:
            dev.kill()
            dev.wait()


def test_demo_stopped_with_sigterm_mid_story_leaves_nothing_running(
    stack: Stack, tmp_path: Path
) -> None:
    output = tmp_path / "demo.out"
    with output.open("wb") as out:
        demo = spawn(
            _embedded_env(stack, tmp_path / "data", postgres=False),
            "demo",
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        started = _started(demo.pid, workers=4)
        wait_for_output(output, "▸", timeout=240, process=demo)  # the story has begun
        demo.send_signal(signal.SIGTERM)
        demo.wait(90)
        _nothing_left(started, "demo")
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()


def test_bench_stopped_with_sigterm_leaves_nothing_running(stack: Stack, tmp_path: Path) -> None:
    env = _embedded_env(stack, tmp_path, postgres=False)
    bench = spawn(env, "bench", "--items", "50", stdout=subprocess.DEVNULL)
    try:
        started = _started(bench.pid, workers=3)
        os.kill(bench.pid, signal.SIGTERM)
        bench.wait(60)
        _nothing_left(started, "bench")
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def test_the_mail_sink_worker_stops_on_sigterm(stack: Stack, tmp_path: Path) -> None:
    port = free_port()
    env = {**stack.env(), "DATA_DIR": str(tmp_path), "MAILSINK_PORT": str(port)}
    sink = spawn(env, "run", "mailsink", stdin=subprocess.DEVNULL)
    try:
        eventually(lambda: _listening(port), timeout=60, message="the mail sink never listened")
        sink.send_signal(signal.SIGTERM)
        assert sink.wait(30) == 0
        assert not _listening(port)
    finally:
        if sink.poll() is None:
            sink.kill()
            sink.wait()
