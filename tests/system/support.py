"""The whole system under test: two of every worker, a mail sink, a cuttable database line."""

from __future__ import annotations

import asyncio
import email
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from email import policy
from pathlib import Path
from typing import Any

import psycopg

from consumers.dev.mailsink import MailSink
from pipeline.kafka import make_producer, read_all
from pipeline.settings import Settings
from tests.tcp_proxy import TcpProxy
from topics import ContractError, TopicSpec, decode

ROOT = Path(__file__).resolve().parents[2]
#: The workers that consume in groups, two instances each.
NAMES = ("processor", "projection", "exporter", "notifier")
LABELS = tuple(f"{name}-{n}" for name in NAMES for n in (1, 2))


class LoopThread:
    """An event loop in a thread, so the proxy serves while tests block on subprocesses."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def call(self, coroutine: Any, timeout_s: float = 30) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout_s)

    def stop(self) -> None:
        # let aborted transports finish closing their sockets before the loop stops
        self.call(asyncio.sleep(0.2))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if not self.loop.is_running():
            self.loop.close()


@dataclass
class System:
    """Workers as subprocesses against `settings`; the database reached through `proxy`."""

    settings: Settings
    base_env: dict[str, str]
    data_dir: Path
    sink: MailSink
    proxy: TcpProxy
    loop: LoopThread
    overrides: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    kills: dict[str, int] = field(default_factory=dict)

    def env(self, label: str) -> dict[str, str]:
        """A worker's environment: our topics, the proxied database, the sink, its own data."""
        return {
            **self.base_env,
            "ERP_TOPIC_PREFIX": self.settings.erp_topic_prefix,
            "DATABASE_URL": self.proxy.url,
            "ERP_DATABASE_URL": self.proxy.url,
            "SMTP_URL": self.sink.url,
            "SMTP_FROM": "erp@system.example",
            "DATA_DIR": str(self.data_dir / label),
            "METRICS_PORT": "0",
            "KAFKA_SESSION_TIMEOUT_MS": "6000",
            "EXPORTER_RETRY_BASE_S": "0.2",
            "EXPORTER_RETRY_MAX_S": "2",
            "EXPORTER_MAX_ATTEMPTS": "60",
            "NOTIFIER_RETRY_MAX_S": "2",
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
            **self.overrides,
        }

    def start(self, label: str) -> subprocess.Popen[bytes]:
        """Start (or restart) one worker instance, its output appended to its log file."""
        name = label.rpartition("-")[0]
        log_path = self.data_dir / f"{label}.log"
        (self.data_dir / label).mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "consumers.cli", "run", name],
                env=self.env(label),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.processes[label] = process
        return process

    def kill(self, label: str) -> None:
        """SIGKILL one worker instance and reap it."""
        process = self.processes[label]
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        self.kills[label] = self.kills.get(label, 0) + 1

    def pids(self) -> dict[str, int]:
        """Worker pids, to prove later that none was replaced."""
        return {label: p.pid for label, p in self.processes.items()}

    def exited(self) -> dict[str, int]:
        """Workers that are no longer running, with their exit codes."""
        return {
            label: code for label, p in self.processes.items() if (code := p.poll()) is not None
        }

    def stop_all(self) -> None:
        """SIGTERM every worker, SIGKILL what is still running after a bounded wait."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def publish_all(
    settings: Settings, records: Iterable[tuple[TopicSpec, bytes | None, bytes]]
) -> None:
    """Publish (topic, key, value) records, waiting for every acknowledgement."""

    async def go() -> None:
        producer = make_producer(settings)
        await producer.start()
        try:
            futures = [
                await producer.send(settings.topic(spec.name), value, key=key)
                for spec, key, value in records
            ]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(go())


def key_of(raw: dict[str, Any]) -> bytes:
    """The contract key of an item event given as a dict."""
    if "item" in raw:
        return f"{raw['company_id']}:{raw['item']['type']}:{raw['item']['id']}".encode()
    if raw["event_type"] == "ApproverUpdated":
        return f"{raw['company_id']}:user:{raw['payload']['user_id']}".encode()
    return f"{raw['company_id']}:settings".encode()


def decoded(settings: Settings, spec: TopicSpec) -> list[Any]:
    """Every decodable event on a topic, in partition order."""
    found = []
    for record in asyncio.run(read_all(settings, spec)):
        try:
            found.append(decode(record.value, spec))
        except ContractError:
            continue
    return found


def rows(settings: Settings, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows from the pipeline's database (directly, never through the proxy)."""
    with psycopg.connect(settings.require_database_url()) as conn:
        return list(conn.execute(sql.encode(), params))


def statuses(settings: Settings, company: str) -> dict[str, str]:
    """item id → status in the read model, for one company."""
    found = rows(settings, "SELECT item_id, status FROM items WHERE company_id = %s", company)
    return {str(item): str(status) for item, status in found}


def until(check: Callable[[], bool], timeout_s: float, what: Callable[[], str] | str) -> None:
    """Poll `check` until true; fail with `what` when the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not reached in {timeout_s:.0f}s: {what if isinstance(what, str) else what()}"
            )
        time.sleep(0.5)


def mail_ids(sink: MailSink) -> list[str]:
    """The notification event id of every message at the sink (one entry per message)."""
    found = []
    for mail in sink.messages():
        header = email.message_from_bytes(mail.content, policy=policy.default)["X-ERP-Notification"]
        if header:
            found.append(str(header).split()[-1])
    return found


def env_flag(name: str, default: int) -> int:
    """A size parameter of the suite from the environment."""
    return int(os.environ.get(name, default))
