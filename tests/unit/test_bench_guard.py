"""The bench's worker check: a phase stops as soon as a worker exits, naming it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any, cast

import pytest

from consumers.bench.cpu import process_state
from consumers.bench.run import WorkerCheck, WorkerExited, guarded
from consumers.dev.stack import Stack
from tests.support.waiting import eventually


class _Workers:
    """Stands in for a Stack: only its `workers` are read."""

    def __init__(self, **workers: subprocess.Popen[bytes]) -> None:
        self.workers = workers


def _python(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code])


@contextlib.contextmanager
def _stopped(process: subprocess.Popen[bytes]) -> Iterator[None]:
    """`process` stopped (SIGSTOP) for the block, resumed after it."""
    os.kill(process.pid, signal.SIGSTOP)
    try:
        eventually(
            lambda: process_state(process.pid) == "T",
            timeout=5,
            interval=0.01,
            message="the process shows as stopped",
        )
        yield
    finally:
        os.kill(process.pid, signal.SIGCONT)


@pytest.fixture
def running() -> Iterator[subprocess.Popen[bytes]]:
    process = _python("import time; time.sleep(60)")
    yield process
    process.kill()
    process.wait()


def test_a_phase_returns_its_result_while_every_worker_runs(
    running: subprocess.Popen[bytes],
) -> None:
    check = WorkerCheck(cast(Stack, _Workers(processor=running)))

    async def phase() -> str:
        await asyncio.sleep(0.7)  # longer than one check interval
        return "measured"

    assert asyncio.run(guarded(check, phase())) == "measured"
    check()  # nothing raised


def test_a_worker_that_exits_stops_the_phase_and_is_named(
    running: subprocess.Popen[bytes],
) -> None:
    exiting = _python("import sys; sys.exit(3)")
    exiting.wait()
    check = WorkerCheck(cast(Stack, _Workers(processor=running, exporter=exiting)))
    cancelled: list[bool] = []

    async def phase() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    with pytest.raises(WorkerExited) as raised:
        asyncio.run(guarded(check, phase()))
    assert f"worker exporter (pid {exiting.pid})" in str(raised.value)
    assert "exit code 3" in str(raised.value)
    assert cancelled == [True]  # the phase does not run on behind the error


def test_a_worker_killed_by_a_signal_is_described_by_it(
    running: subprocess.Popen[bytes],
) -> None:
    running.kill()
    running.wait()
    with pytest.raises(WorkerExited, match="killed by SIGKILL"):
        WorkerCheck(cast(Stack, _Workers(processor=running)))()


def test_a_worker_that_stopped_cleanly_is_not_called_a_success() -> None:
    ended = _python("pass")  # as a worker whose SIGTERM handling ends with exit 0
    ended.wait()
    with pytest.raises(WorkerExited, match=r"exit code 0 \(stopped as on SIGTERM or Ctrl-C\)"):
        WorkerCheck(cast(Stack, _Workers(projection=ended)))()


def test_a_worker_stopped_on_two_checks_in_a_row_stops_the_run(
    running: subprocess.Popen[bytes],
) -> None:
    """A SIGSTOPped processor went unnoticed and its pause was reported as a p99."""
    check = WorkerCheck(cast(Stack, _Workers(processor=running)))
    with _stopped(running):
        check()  # once may be a profiler's sample
        with pytest.raises(WorkerExited, match=r"worker processor .* is stopped"):
            check()
    eventually(
        lambda: process_state(running.pid) != "T",
        timeout=5,
        interval=0.01,
        message="the process runs again",
    )
    check()  # running again: the count starts over
    check()


def test_a_phase_error_is_raised_as_it_is(running: subprocess.Popen[bytes]) -> None:
    async def phase() -> Any:
        raise RuntimeError("warm-up item never synced")

    with pytest.raises(RuntimeError, match="never synced"):
        asyncio.run(guarded(WorkerCheck(cast(Stack, _Workers(processor=running))), phase()))


def test_the_last_check_looks_again_at_a_worker_it_sees_stopped(
    running: subprocess.Popen[bytes],
) -> None:
    """A processor stopped as replay, the last guarded phase, began was seen once and the
    run exited 0 with its figures."""
    check = WorkerCheck(cast(Stack, _Workers(processor=running)))
    with _stopped(running), pytest.raises(WorkerExited, match="is stopped"):
        check.last()
