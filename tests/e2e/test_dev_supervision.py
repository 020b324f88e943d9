"""`erp-pipeline dev` and `demo` watch their workers: an exit is reported with the worker's last
log lines and the worker restarted; a worker that cannot start stops the command with its error."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from consumers.dev import samples as se
from consumers.dev.stack import Stack
from tests.support.kafka import about, publish, wait_for_events
from tests.support.processes import cli, hiding, spawn, stop_all, wait_for_output
from tests.support.waiting import eventually
from topics.specs import DIRECTORY, STATUS, SUBMISSIONS

pytestmark = pytest.mark.timeout(300)


def _dev_env(stack: Stack, tmp_path: Path, **extra: str) -> dict[str, str]:
    """`dev` against this run's broker and database, with topics and a data directory of its own."""
    env = {
        **stack.env(),
        "ERP_TOPIC_PREFIX": f"{stack.settings.erp_topic_prefix}dev{uuid.uuid4().hex[:6]}.",
        "DATA_DIR": str(tmp_path / "data"),
        "KAFKA_SESSION_TIMEOUT_MS": "6000",
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "INFO",
        **extra,
    }
    env.pop("METRICS_PORT", None)
    return env


@contextlib.contextmanager
def _dev(env: dict[str, str], output: Path) -> Iterator[subprocess.Popen[Any]]:
    """`erp-pipeline dev` for the block, its stdout and stderr in `output`."""
    with output.open("wb") as out:
        process = spawn(env, "dev", stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield process
    finally:
        stop_all([process], timeout=60)


def _alive(pid: int) -> bool:
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to see the worker running")
def test_dev_reports_a_killed_worker_with_its_last_log_lines_and_restarts_it(
    stack: Stack, tmp_path: Path
) -> None:
    env = _dev_env(stack, tmp_path)
    output = tmp_path / "dev.out"
    with _dev(env, output) as dev:
        running = wait_for_output(output, r"^ERP pipeline is running:", timeout=180, process=dev)
        worker = wait_for_output(
            output, r"Worker +processor: pid (\d+)", timeout=5, after=running.start()
        )
        pid = int(worker.group(1))
        os.kill(pid, signal.SIGKILL)
        report = wait_for_output(
            output,
            rf"^worker processor \(pid {pid}\) exited: killed by SIGKILL; restarting it in \d+s\. "
            r"Last log lines:\n((?: {4}\| .*\n)+)",
            timeout=30,
            process=dev,
        )
        shown = [line.removeprefix("    | ") for line in report.group(1).splitlines()]
        log = (tmp_path / "data" / "logs" / "processor.log").read_text()
        assert shown and all(line in log for line in shown), shown
        restarted = wait_for_output(
            output, r"^worker processor restarted: pid (\d+)", timeout=30, process=dev
        )
        new_pid = int(restarted.group(1))
        assert new_pid != pid and _alive(new_pid)

        settings = stack.settings.model_copy(update={"erp_topic_prefix": env["ERP_TOPIC_PREFIX"]})
        publish(settings, DIRECTORY, se.company_settings(), se.approver_updated(se.APPROVER))
        item = f"prj-{uuid.uuid4().hex[:6]}"
        publish(settings, SUBMISSIONS, se.project_submitted(item))
        wait_for_events(settings, STATUS, about(item), timeout=120)
        assert dev.poll() is None and _alive(new_pid)
        dev.send_signal(signal.SIGTERM)
        assert dev.wait(60) == 0
    assert output.read_text().rstrip().endswith("stopped.")


def test_dev_stops_with_the_error_of_a_worker_that_cannot_start(
    stack: Stack, tmp_path: Path
) -> None:
    # an install without the processor's store package: the processor exits at every start
    env = _dev_env(stack, tmp_path, PYTHONPATH=hiding("rocksdict", tmp_path / "lib"))
    output = tmp_path / "dev.out"
    with _dev(env, output) as dev:

        def stopped() -> bool:
            if "ERP pipeline is running" in output.read_text(errors="replace"):
                raise AssertionError(f"dev says it runs:\n{output.read_text()[-4000:]}")
            return dev.poll() is not None

        eventually(stopped, timeout=180, interval=0.2, message="dev never stopped")
        text = output.read_text()
        assert dev.returncode == 1, text[-4000:]
    assert "Error: worker processor" in text and "giving up" in text, text[-4000:]
    assert "PROCESSOR_STORE=rocksdb needs the rocksdict package" in text
    assert text.rstrip().endswith("The stack was stopped.")


def test_demo_stops_with_the_error_of_a_worker_that_cannot_start(
    stack: Stack, tmp_path: Path
) -> None:
    env = _dev_env(stack, tmp_path, PYTHONPATH=hiding("rocksdict", tmp_path / "lib"))
    result = cli(env, "demo", "--once", timeout=240)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert "the demo stopped: worker processor" in result.stderr, result.stderr[-3000:]
    assert "PROCESSOR_STORE=rocksdb needs the rocksdict package" in result.stderr
    assert "Project" not in result.stdout  # the story never began
