"""The dev stack's supervisor: exits reported with the last log lines, restarts within a budget."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from consumers.bench.cpu import process_state
from consumers.dev.stack import Stack
from consumers.dev.supervise import RestartBudget, Supervisor, WorkerFailed, describe_exit
from pipeline.settings import Settings
from tests.support.waiting import eventually

#: What each fake worker does: print its lines, then exit with its code (None: wait for stdin
#: to close, i.e. run until killed).
SCRIPTS = {
    "crashing": "print('loading'); print('boom: bad setting'); raise SystemExit(3)",
    "running": "print('up', flush=True); import time; time.sleep(60)",
}


class FakeStack(Stack):
    """A stack whose workers are small Python scripts (no broker, no database)."""

    def worker_argv(self, name: str, *extra: str) -> list[str]:
        return [sys.executable, "-c", SCRIPTS[name]]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[FakeStack]:
    settings = Settings(
        kafka_bootstrap_servers="127.0.0.1:1", database_url=SecretStr("postgresql://nowhere/x")
    )
    fake = FakeStack(settings, False, False)
    fake.log_dir = tmp_path / "logs"
    yield fake
    fake.stop_workers(timeout_s=5)


def _exited(stack: Stack, label: str) -> None:
    eventually(
        lambda: stack.workers[label].poll() is not None,
        timeout=20,
        interval=0.02,
        message=f"{label} exited",
    )


def test_the_budget_doubles_its_wait_then_is_spent() -> None:
    budget = RestartBudget(restarts=3, backoff_s=1, max_backoff_s=3)
    assert [budget.delay(n) for n in range(4)] == [1, 2, 3, None]


def test_exits_are_described_by_code_or_signal() -> None:
    assert describe_exit(1) == "exit code 1"
    assert describe_exit(-9) == "killed by SIGKILL"


def test_an_exit_is_reported_with_its_last_log_lines_and_restarted(stack: FakeStack) -> None:
    said: list[str] = []
    clock = Clock()
    supervisor = Supervisor(stack, said.append, clock=clock)
    (stack.log_dir / "crashing.log").parent.mkdir(parents=True)
    (stack.log_dir / "crashing.log").write_text("an earlier run's line\n")
    first = stack.start_worker("crashing")
    _exited(stack, "crashing")
    supervisor.poll()
    assert said == [
        f"worker crashing (pid {first.pid}) exited: exit code 3; restarting it in 1s. "
        "Last log lines:\n    | loading\n    | boom: bad setting"
    ]
    supervisor.poll()
    assert stack.workers["crashing"] is first  # the wait is not over
    clock.now += 1
    supervisor.poll()
    second = stack.workers["crashing"]
    assert second.pid != first.pid
    assert said[-1] == f"worker crashing restarted: pid {second.pid}"


def test_a_worker_that_keeps_exiting_spends_its_budget_and_fails(stack: FakeStack) -> None:
    said: list[str] = []
    clock = Clock()
    supervisor = Supervisor(stack, said.append, clock=clock, budget=RestartBudget(restarts=2))
    stack.start_worker("crashing")
    for _ in range(2):
        _exited(stack, "crashing")
        supervisor.poll()
        clock.now += 10
        supervisor.poll()  # restarted
    _exited(stack, "crashing")
    with pytest.raises(WorkerFailed) as info:
        supervisor.poll()
    message = str(info.value)
    assert "worker crashing" in message and "exit code 3" in message
    assert "restarted 2 times within 120s" in message and "| boom: bad setting" in message


def test_restarts_older_than_the_window_no_longer_count(stack: FakeStack) -> None:
    clock = Clock()
    supervisor = Supervisor(stack, [].append, clock=clock, budget=RestartBudget(restarts=1))
    stack.start_worker("crashing")
    _exited(stack, "crashing")
    supervisor.poll()
    clock.now += 1
    supervisor.poll()  # restarted once: the budget is spent for 120 s
    _exited(stack, "crashing")
    clock.now += 121
    supervisor.poll()  # not WorkerFailed: that restart is out of the window
    assert "crashing" in supervisor._due


def test_running_workers_are_left_alone_and_their_logs_echoed(stack: FakeStack) -> None:
    said: list[str] = []
    echoed: list[str] = []
    supervisor = Supervisor(stack, said.append, echo=echoed.append)
    process = stack.start_worker("running")

    def echoed_up() -> bool:
        supervisor.poll()
        return "running    | up" in echoed

    eventually(echoed_up, timeout=20, interval=0.05, message=f"echoed: {echoed}")
    assert said == [] and stack.workers["running"] is process and process.poll() is None


def test_a_stopped_worker_is_resumed_so_that_it_stops_on_sigterm(stack: FakeStack) -> None:
    """A SIGSTOPped worker held `stop_workers` for its whole timeout, then was SIGKILLed."""
    process = stack.start_worker("running")
    os.kill(process.pid, signal.SIGSTOP)
    eventually(
        lambda: process_state(process.pid) == "T",
        timeout=5,
        interval=0.01,
        message="the worker shows as stopped",
    )
    stack.stop_workers(timeout_s=3)
    assert process.returncode == -signal.SIGTERM, describe_exit(process.returncode)
