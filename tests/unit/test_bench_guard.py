"""The bench's worker check: a phase stops as soon as a worker exits, naming it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from typing import Any, cast

import pytest

from consumers.bench.run import WorkerExited, check_workers, guarded
from consumers.dev.stack import Stack


class _Workers:
    """Stands in for a Stack: only its `workers` are read."""

    def __init__(self, **workers: subprocess.Popen[bytes]) -> None:
        self.workers = workers


def _python(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code])


@pytest.fixture
def running() -> Iterator[subprocess.Popen[bytes]]:
    process = _python("import time; time.sleep(60)")
    yield process
    process.kill()
    process.wait()


def test_a_phase_returns_its_result_while_every_worker_runs(
    running: subprocess.Popen[bytes],
) -> None:
    stack = cast(Stack, _Workers(processor=running))

    async def phase() -> str:
        await asyncio.sleep(0.7)  # longer than one check interval
        return "measured"

    assert asyncio.run(guarded(stack, phase())) == "measured"
    check_workers(stack)  # nothing raised


def test_a_worker_that_exits_stops_the_phase_and_is_named(
    running: subprocess.Popen[bytes],
) -> None:
    exiting = _python("import sys; sys.exit(3)")
    exiting.wait()
    stack = cast(Stack, _Workers(processor=running, exporter=exiting))
    cancelled: list[bool] = []

    async def phase() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    with pytest.raises(WorkerExited) as raised:
        asyncio.run(guarded(stack, phase()))
    assert f"worker exporter (pid {exiting.pid})" in str(raised.value)
    assert "exit code 3" in str(raised.value)
    assert cancelled == [True]  # the phase does not run on behind the error


def test_a_worker_killed_by_a_signal_is_described_by_it(
    running: subprocess.Popen[bytes],
) -> None:
    running.kill()
    running.wait()
    with pytest.raises(WorkerExited, match="killed by SIGKILL"):
        check_workers(cast(Stack, _Workers(processor=running)))


def test_a_phase_error_is_raised_as_it_is(running: subprocess.Popen[bytes]) -> None:
    async def phase() -> Any:
        raise RuntimeError("warm-up item never synced")

    with pytest.raises(RuntimeError, match="never synced"):
        asyncio.run(guarded(cast(Stack, _Workers(processor=running)), phase()))
