"""`erp-pipeline run WORKER` whose METRICS_PORT is taken: it stops at once, naming the setting."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import cli, env_for


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port on every interface, held (listening) by the test, as another worker would."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("0.0.0.0", 0))  # where the workers serve /metrics
        held.listen()
        yield int(held.getsockname()[1])


@pytest.mark.parametrize("name", ["processor", "projection", "exporter", "notifier"])
def test_a_worker_whose_metrics_port_is_taken_exits_with_a_one_line_error(
    worker_env: dict[str, str], tmp_path: Path, taken_port: int, name: str
) -> None:
    """Before, the worker logged an error and ran on with no /metrics, /healthz, /readyz, and a
    probe on the port answered for whoever held it."""
    env = env_for(worker_env, tmp_path / "data", METRICS_PORT=str(taken_port))
    env["ERP_TOPIC_PREFIX"] = f"{env['ERP_TOPIC_PREFIX']}portless."
    env.setdefault("SMTP_URL", "smtp://127.0.0.1:2525")  # never reached: nothing to send
    result = cli(env, "run", name, timeout=90)
    assert result.returncode == 1, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert errors == [
        f"Error: cannot serve /metrics, /healthz and /readyz on METRICS_PORT={taken_port}"
        " (Address already in use): give each worker on this host its own METRICS_PORT"
        " (0: any free port)"
    ], result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
