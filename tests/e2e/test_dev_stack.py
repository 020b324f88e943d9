"""`erp-pipeline dev` on the embedded path: starts everything, says where, stops on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import psycopg

from tests.support.processes import command, spawn, with_root
from tests.support.waiting import eventually


def _wait_for_line(process: subprocess.Popen[str], pattern: str, timeout_s: float) -> list[str]:
    """Read stdout until a line matches `pattern`; fail with what was printed at the deadline."""
    lines: list[str] = []
    stdout = process.stdout
    assert stdout is not None
    os.set_blocking(stdout.fileno(), False)

    def matched() -> list[str] | None:
        while line := stdout.readline():
            lines.append(line.rstrip())
            if re.search(pattern, line):
                return lines
        if process.poll() is not None:
            raise AssertionError(f"dev exited; no line matching {pattern!r}; got: {lines}")
        return None

    return eventually(
        matched,
        timeout=timeout_s,
        interval=0.05,
        message=lambda: f"no line matching {pattern!r}; got: {lines}",
    )


def _env_without_services(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
    }
    env.update(
        {
            "DATA_DIR": str(tmp_path / "data"),
            "ERP_TOPIC_PREFIX": "devtest.",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def test_dev_starts_embedded_services_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    with spawn(
        _env_without_services(tmp_path),
        "dev",
        "--no-workers",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        _drive(process, tmp_path)


def _drive(process: subprocess.Popen[str], tmp_path: Path) -> None:
    try:
        lines = _wait_for_line(process, r"Press Ctrl-C", 90)
        kafka = next(line for line in lines if line.strip().startswith("Kafka"))
        port = int(re.search(r"127\.0\.0\.1:(\d+)", kafka).group(1))  # type: ignore[union-attr]
        assert "embedded" in kafka
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        pg_dir = tmp_path / "data" / "postgres"
        with psycopg.connect(host=str(pg_dir), dbname="postgres", user="postgres") as conn:
            assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] >= 1  # type: ignore[index]
        # what dev says to export is enough for the CLI's read-model commands
        exports = dict(
            re.findall(r"export (\w+)='?([^'\s]+)'?", "\n".join(lines))  # type: ignore[arg-type]
        )
        assert set(exports) >= {"KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL"}, lines
        queue = subprocess.run(
            command("queue", "--company", "acme-builders"),
            env=with_root({**_env_without_services(tmp_path), **exports}),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert queue.returncode == 0, queue.stderr
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
        rest = process.stdout.read() if process.stdout else ""
        assert "stopped." in rest
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            raise AssertionError("the broker still listens after dev stopped")
        except OSError:
            pass
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
