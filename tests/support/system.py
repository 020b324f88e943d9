"""The whole system under test: two of every worker, a mail sink, a cuttable database line."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import urllib.request
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from consumers.dev.mailsink import MailSink
from consumers.dev.services import free_port
from pipeline.settings import Settings
from tests.support.paths import ROOT
from tests.support.processes import start_worker, stop_all
from tests.support.tcp_proxy import TcpProxy

#: The workers that consume in groups, two instances each.
NAMES = ("processor", "projection", "exporter", "notifier")
LABELS = tuple(f"{name}-{n}" for name in NAMES for n in (1, 2))
#: The item whose processing raises inside the processor (see PROCESSOR_POISON_ITEM_ID).
POISON_ITEM = "poison-pill-item"


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
    metrics_ports: dict[str, int] = field(default_factory=dict)

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

    def cli_env(self) -> dict[str, str]:
        """The environment of an operator's `erp-pipeline` command against this system."""
        return {**self.base_env, "ERP_TOPIC_PREFIX": self.settings.erp_topic_prefix}

    def start(self, label: str, **extra_env: str) -> subprocess.Popen[bytes]:
        """Start (or restart) one worker instance, its output appended to its log file;
        `extra_env` adds to its environment for this start only."""
        (self.data_dir / label).mkdir(parents=True, exist_ok=True)
        port = free_port()
        process = start_worker(
            label.rpartition("-")[0],
            {**self.env(label), "METRICS_PORT": str(port), **extra_env},
            self.data_dir / f"{label}.log",
        )
        self.processes[label] = process
        self.metrics_ports[label] = port
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

    def consumed(self) -> Counter[tuple[str, str]]:
        """`erp_pipeline_events_consumed_total` summed over every running worker, by (topic,
        outcome): how many records each topic's workers finished since they started."""
        found: Counter[tuple[str, str]] = Counter()
        for label in self.processes:
            url = f"http://127.0.0.1:{self.metrics_ports[label]}/metrics"
            with urllib.request.urlopen(url, timeout=10) as response:
                page = response.read().decode()
            for family in text_string_to_metric_families(page):
                for sample in family.samples:
                    if sample.name == "erp_pipeline_events_consumed_total":
                        found[(sample.labels["topic"], sample.labels["outcome"])] += int(
                            sample.value
                        )
        return found

    def batches(self, label: str) -> tuple[int, int, int] | None:
        """The processor instance's batches so far: (batches, of them with more than one
        record, records), from `erp_pipeline_processor_batch_records`; None if it does not
        answer (starting, or gone)."""
        url = f"http://127.0.0.1:{self.metrics_ports[label]}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                page = response.read().decode()
        except OSError:
            return None
        count = single = records = 0
        for family in text_string_to_metric_families(page):
            for sample in family.samples:
                if sample.name == "erp_pipeline_processor_batch_records_count":
                    count = int(sample.value)
                elif sample.name == "erp_pipeline_processor_batch_records_sum":
                    records = int(sample.value)
                elif (
                    sample.name == "erp_pipeline_processor_batch_records_bucket"
                    and float(sample.labels["le"]) == 1.0
                ):
                    single = int(sample.value)
        return count, count - single, records

    def exited(self) -> dict[str, int]:
        """Workers that are no longer running, with their exit codes."""
        return {
            label: code for label, p in self.processes.items() if (code := p.poll()) is not None
        }

    def stop_all(self) -> None:
        """SIGTERM every worker, SIGKILL what is still running after a bounded wait."""
        stop_all(self.processes.values(), timeout=20)


def env_flag(name: str, default: int) -> int:
    """A size parameter of the suite from the environment."""
    return int(os.environ.get(name, default))
