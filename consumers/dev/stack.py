"""`erp-pipeline dev`: embedded services where none are configured, topics, schema, workers."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from consumers.dev.mailsink import MailSink
from consumers.dev.services import embedded_services, free_port
from consumers.worker import db
from pipeline.processor.config import state_dir
from pipeline.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Stack:
    """What is running: settings pointing at it, and the worker processes."""

    settings: Settings
    embedded_broker: bool
    embedded_postgres: bool
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    metrics_ports: dict[str, int] = field(default_factory=dict)
    #: When set, each worker's output goes to `<log_dir>/<name>.log` instead of the console.
    log_dir: Path | None = None
    #: How each worker was started (`run` arguments), to start it again.
    commands: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: Where each worker's current process began writing in its log file (bytes).
    log_starts: dict[str, int] = field(default_factory=dict)
    #: Where the embedded mail sink drops e-mails; None when SMTP_URL points elsewhere.
    maildrop: Path | None = None
    #: The console's port once started (CONSOLE_PORT when set, else a free one).
    console_port: int | None = None

    def env(self) -> dict[str, str]:
        """Environment for a child process so that it uses this stack."""
        env = dict(os.environ)
        env["KAFKA_BOOTSTRAP_SERVERS"] = self.settings.require_bootstrap()
        env["DATABASE_URL"] = self.settings.require_database_url()
        env["ERP_TOPIC_PREFIX"] = self.settings.erp_topic_prefix
        env["KAFKA_SINGLE_RECORD_BATCHES"] = str(self.settings.kafka_single_record_batches).lower()
        if self.settings.smtp_url is not None:
            env["SMTP_URL"] = self.settings.smtp_url.get_secret_value()
        if self.settings.erp_database_url is not None:
            env["ERP_DATABASE_URL"] = self.settings.erp_database_url.get_secret_value()
        console_url = self.console_url()
        if console_url is not None and not env.get("CONSOLE_PUBLIC_URL"):
            # e-mails link to the item's page on the console this stack runs
            env["CONSOLE_PUBLIC_URL"] = console_url
        return env

    def start_worker(
        self, name: str, *extra: str, instance: str | None = None
    ) -> subprocess.Popen[bytes]:
        """Start `erp-pipeline run NAME` as a child process on a free metrics port.

        `instance` names a second copy of the same worker (same consumer groups).
        """
        label = instance or name
        port = self.metrics_ports.get(label) or free_port()
        env = {**self.env(), "METRICS_PORT": str(port)}
        if name == "console":
            env.update(self.console_env(env))
        output: Any = None
        log_path = self.log_path(label)
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            output = log_path.open("ab")
            self.log_starts[label] = output.tell()
        try:
            process = subprocess.Popen(
                self.worker_argv(name, *extra),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT if output is not None else None,
            )
        finally:
            if output is not None:
                output.close()
        self.workers[label] = process
        self.metrics_ports[label] = port
        self.commands[label] = (name, *extra)
        return process

    def console_env(self, env: dict[str, str]) -> dict[str, str]:
        """The console's settings in the stack: CONSOLE_PORT as configured or a free port
        (kept across restarts), and the dev sign-in on unless CONSOLE_DEV_SIGNIN says
        otherwise: a local stack is for development."""
        self.reserve_console_port(env)
        return {
            "CONSOLE_PORT": str(self.console_port),
            "CONSOLE_DEV_SIGNIN": env.get("CONSOLE_DEV_SIGNIN", "true"),
        }

    def reserve_console_port(self, env: Mapping[str, str] | None = None) -> int:
        """The console's port: CONSOLE_PORT of `env` (the workers' environment, `env()` when
        None) when set, else a free one, chosen once (before any worker starts, so that the
        notifier's links name it)."""
        if self.console_port is None:
            configured = (self.env() if env is None else env).get("CONSOLE_PORT")
            self.console_port = int(configured or free_port())
        return self.console_port

    def console_url(self) -> str | None:
        """Where the console answers (None: not started)."""
        if self.console_port is None:
            return None
        host = os.environ.get("CONSOLE_HOST", "127.0.0.1")
        return f"http://{host}:{self.console_port}/"

    def worker_argv(self, name: str, *extra: str) -> list[str]:
        """The command line of worker `name`: `erp-pipeline run NAME` with this interpreter."""
        return [sys.executable, "-m", "consumers.cli", "run", name, *extra]

    def restart_worker(self, label: str) -> subprocess.Popen[bytes]:
        """Start the worker `label` again, as it was started (same metrics port, same log)."""
        name, *extra = self.commands[label]
        return self.start_worker(name, *extra, instance=label if label != name else None)

    def log_path(self, label: str) -> Path | None:
        """The worker's log file (None when its output goes to the console)."""
        return None if self.log_dir is None else self.log_dir / f"{label}.log"

    def last_log_lines(self, label: str, count: int = 20) -> list[str]:
        """The last `count` lines its current process wrote to the worker's log file."""
        path = self.log_path(label)
        if path is None or not path.exists():
            return []
        with path.open("rb") as log_file:
            size = log_file.seek(0, os.SEEK_END)
            start = max(self.log_starts.get(label, 0), size - 64 * 1024)
            log_file.seek(start)
            text = log_file.read().decode("utf-8", errors="replace")
        return [line for line in text.splitlines() if line.strip()][-count:]

    def stop_workers(self, timeout_s: float = 20.0) -> None:
        """SIGTERM every worker; SIGKILL those still running after `timeout_s`.

        Each gets SIGCONT first: a stopped process (SIGSTOP, a debugger) acts on SIGTERM
        only once resumed, and would otherwise hold the stop for all of `timeout_s`.
        """
        for process in self.workers.values():
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for process in self.workers.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.workers.clear()


def prepare(settings: Settings) -> None:
    """Create every topic from its spec and apply the database schema."""
    import asyncio

    from consumers.export.spectrum.schema import migrate as migrate_erp
    from pipeline.kafka import create_topics

    asyncio.run(create_topics(settings))
    db.migrate(settings.require_database_url())
    migrate_erp(settings.require_erp_database_url())


@contextlib.contextmanager
def running_stack(settings: Settings | None = None) -> Iterator[Stack]:
    """Start what is not configured (broker, PostgreSQL), create topics, migrate; stop after."""
    settings = settings or Settings()
    data_dir = Path(settings.data_dir)
    want_broker = not settings.kafka_bootstrap_servers
    if want_broker:
        # The embedded broker keeps nothing between runs, so local table state kept on disk
        # by an earlier run describes topics that no longer exist: start it afresh too.
        shutil.rmtree(state_dir(settings), ignore_errors=True)
    want_postgres = settings.database_url is None
    with embedded_services(broker=want_broker, postgres=want_postgres, data_dir=data_dir) as (
        bootstrap,
        database_url,
    ):
        updates: dict[str, object] = {}
        if bootstrap:
            updates["kafka_bootstrap_servers"] = bootstrap
            # its end offsets are exact only for one-record batches (see Settings)
            updates["kafka_single_record_batches"] = True
        if database_url:
            updates["database_url"] = SecretStr(database_url)
        with _mail_sink(settings, data_dir) as sink:
            if sink is not None:
                updates["smtp_url"] = SecretStr(sink.url)
            stack = Stack(
                settings.model_copy(update=updates),
                embedded_broker=want_broker,
                embedded_postgres=want_postgres,
                maildrop=sink.maildrop if sink is not None else None,
            )
            prepare(stack.settings)
            try:
                yield stack
            finally:
                stack.stop_workers()


@contextlib.contextmanager
def _mail_sink(settings: Settings, data_dir: Path) -> Iterator[MailSink | None]:
    """A loopback SMTP sink writing to `<data_dir>/maildrop`, unless SMTP_URL is configured."""
    if settings.smtp_url is not None:
        yield None
        return
    try:
        sink = MailSink(data_dir / "maildrop").start()
    except ImportError:
        log.warning("no mail sink: aiosmtpd is missing (pip install -e '.[embedded]')")
        yield None
        return
    try:
        yield sink
    finally:
        sink.stop()
