"""`erp-pipeline bench` cut short: a worker that dies or a Ctrl-C stops the run with an error,
never a report of figures taken from a broken run."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from consumers.bench.cpu import children, process_state
from consumers.dev.stack import Stack
from tests.support.processes import spawn, wait_for_output
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(180)

#: The smallest run that reaches the soak; the soak would last a minute if nothing stopped it.
SMALL_RUN = (
    "bench",
    "--items",
    "20",
    "--pending",
    "1",
    "--load-seconds",
    "60",
    "--min-samples",
    "20",
    "--baseline-events",
    "1000",
    "--no-faust-reference",
    "--no-foreign-partitioner",
)
#: How soon the bench must stop once the run is broken (the soak alone has a minute to go).
STOPS_WITHIN_S = 20


def _bench(worker_env: dict[str, str], tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    """The bench in a session of its own (as a terminal's foreground job: Ctrl-C reaches the
    bench and its workers), its stderr in a file."""
    err = tmp_path / "bench.err"
    env = {**worker_env, "DATA_DIR": str(tmp_path / "data")}
    with err.open("w") as stderr:
        process = spawn(
            env,
            *SMALL_RUN,
            "--json",
            str(tmp_path / "out.json"),
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
    return process, err


def _worker_pid(bench_pid: int, name: str) -> int:
    """The pid of the bench's `erp-pipeline run NAME` child."""
    for pid in children(bench_pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[-3:-1] == [b"run", name.encode()]:
            return pid
    raise AssertionError(f"no {name} worker under pid {bench_pid}")


def _alive(pid: int) -> bool:
    """Whether `pid` still runs (a zombie left for its new parent to reap does not)."""
    return process_state(pid) not in (None, "Z")


def _stopped(process: subprocess.Popen[str], err: Path) -> tuple[int, str, str]:
    try:
        eventually(
            lambda: process.poll() is not None,
            timeout=STOPS_WITHIN_S,
            interval=0.2,
            message=lambda: f"the bench went on:\n{err.read_text()[-3000:]}",
        )
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    stdout, _ = process.communicate()  # reads and closes the pipe
    return process.returncode, stdout, err.read_text()


def test_a_worker_killed_during_the_soak_stops_the_bench_with_its_name(
    stack: Stack, worker_env: dict[str, str], tmp_path: Path
) -> None:
    process, err = _bench(worker_env, tmp_path)
    wait_for_output(err, r"under load \(soak\)", timeout=120, process=process)
    others = [_worker_pid(process.pid, name) for name in ("exporter", "projection")]
    os.kill(_worker_pid(process.pid, "processor"), signal.SIGKILL)

    code, stdout, stderr = _stopped(process, err)

    assert code == 1, stderr[-3000:]
    assert "worker processor" in stderr and "killed by SIGKILL" in stderr
    assert "no figures" in stderr
    # nothing measured on the broken run is printed or written
    assert "Targets" not in stdout
    assert not (tmp_path / "out.json").exists()
    # the other workers were stopped with it, and the run's worker files removed
    assert not any(_alive(pid) for pid in others)
    runs = tmp_path / "data" / "bench"
    assert not runs.exists() or not any(runs.iterdir())


def test_ctrl_c_stops_the_bench_and_its_workers(
    stack: Stack, worker_env: dict[str, str], tmp_path: Path
) -> None:
    process, err = _bench(worker_env, tmp_path)
    wait_for_output(err, r"under load \(soak\)", timeout=120, process=process)
    workers = [_worker_pid(process.pid, name) for name in ("processor", "exporter", "projection")]

    os.killpg(process.pid, signal.SIGINT)  # what a terminal sends on Ctrl-C
    code, stdout, stderr = _stopped(process, err)

    assert code != 0, stderr[-3000:]
    assert "Targets" not in stdout
    assert not (tmp_path / "out.json").exists()
    assert not any(_alive(pid) for pid in workers)
