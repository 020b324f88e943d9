"""A real Prometheus server scrapes the workers of a running stack; the key series make sense."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from consumers.dev import samples as se
from consumers.dev.services import free_port
from consumers.dev.stack import Stack
from pipeline.settings import Settings
from tests.support.db import seeded_company
from tests.support.events import for_company
from tests.support.kafka import isolated, publish
from tests.support.processes import env_for, start_worker, stop
from tests.support.waiting import eventually
from topics.specs import DECISIONS, DIRECTORY, SUBMISSIONS

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus not installed"),
]

COMPANY = "prom-co"
WORKERS = ("processor", "projection", "exporter")


class Prometheus:
    """A Prometheus server of the test's own, scraping `targets` every second."""

    def __init__(self, targets: list[str], workdir: Path) -> None:
        self.port = free_port()
        config = workdir / "prometheus.yml"
        config.write_text(
            json.dumps(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "scrape_configs": [
                        {"job_name": "erp-pipeline", "static_configs": [{"targets": targets}]}
                    ],
                }
            )
        )
        self.process = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def query(self, expr: str) -> float | None:
        """The value of an instant query with one result, None when it has none (yet)."""
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode(
            {"query": expr}
        )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                result = json.load(response)["data"]["result"]
        except OSError:
            return None
        return float(result[0]["value"][1]) if result else None

    def wait(self, expr: str, check: Callable[[float], bool], timeout_s: float = 60) -> float:
        """Poll `expr` until `check(value)` holds; the value."""
        last: list[float | None] = [None]

        def holds() -> tuple[float] | None:
            last[0] = value = self.query(expr)
            # a tuple, so that a value of 0 can be the answer
            return (value,) if value is not None and check(value) else None

        (value,) = eventually(
            holds, timeout=timeout_s, interval=0.5, message=lambda: f"{expr} = {last[0]}"
        )
        return value


@pytest.fixture(scope="module")
def observed(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, Prometheus]]:
    """The processor, projection and exporter on topics of their own, scraped by Prometheus."""
    mine = asyncio.run(isolated(stack.settings, "prom"))
    seeded_company(mine, COMPANY)
    publish(mine, DIRECTORY, for_company(COMPANY, se.approver_updated(se.APPROVER)))
    workdir = tmp_path_factory.mktemp("prometheus")
    ports = {name: free_port() for name in WORKERS}
    processes = []
    for name in WORKERS:
        env = env_for(
            {**stack.env(), "ERP_TOPIC_PREFIX": mine.erp_topic_prefix},
            workdir / name,
            METRICS_PORT=str(ports[name]),
            METRICS_SAMPLE_INTERVAL_S="1",
        )
        processes.append(start_worker(name, env, workdir / f"{name}.log"))
    prometheus = Prometheus([f"127.0.0.1:{port}" for port in ports.values()], workdir)
    try:
        prometheus.wait('sum(up{job="erp-pipeline"})', lambda v: v == len(WORKERS))
        yield mine, prometheus
    finally:
        stop(prometheus.process)
        for process in processes:
            stop(process)


def test_queue_depth_rises_on_submit_and_falls_on_accept(
    observed: tuple[Settings, Prometheus],
) -> None:
    settings, prometheus = observed
    depth = f'sum(erp_pipeline_items{{status="ready_to_export",company="{COMPANY}"}})'
    publish(
        settings,
        SUBMISSIONS,
        *[for_company(COMPANY, se.project_submitted(f"prom-{n}")) for n in range(3)],
    )
    assert prometheus.wait(depth, lambda v: v == 3) == 3
    assert (
        prometheus.wait(
            f'max(erp_pipeline_oldest_ready_to_export_age_seconds{{company="{COMPANY}"}})',
            lambda v: v >= 0,
        )
        >= 0
    )
    publish(
        settings,
        DECISIONS,
        for_company(
            COMPANY, se.accepted("project", "prom-0", erp_job_id="PROM0", job_template="COMM")
        ),
        for_company(
            COMPANY, se.accepted("project", "prom-1", erp_job_id="PROM1", job_template="NO-SUCH")
        ),
    )
    assert prometheus.wait(depth, lambda v: v == 1) == 1
    synced = f'sum(erp_pipeline_items{{status="synced",company="{COMPANY}"}})'
    failed = f'sum(erp_pipeline_items{{status="failed_to_export",company="{COMPANY}"}})'
    assert prometheus.wait(synced, lambda v: v == 1) == 1
    assert prometheus.wait(failed, lambda v: v == 1) == 1
    assert prometheus.wait("sum(erp_pipeline_export_failures_total)", lambda v: v >= 1) >= 1
    assert (
        prometheus.wait(
            'sum(erp_pipeline_export_attempts_total{outcome="exported"})', lambda v: v >= 1
        )
        >= 1
    )
    assert (
        prometheus.wait("sum(erp_pipeline_submission_to_decision_seconds_count)", lambda v: v >= 2)
        >= 2
    )
    assert (
        prometheus.wait("sum(erp_pipeline_accept_to_synced_seconds_count)", lambda v: v >= 1) >= 1
    )


def test_every_worker_reports_consumption_lag_commits_and_memory(
    observed: tuple[Settings, Prometheus],
) -> None:
    _, prometheus = observed
    for worker_metric in (
        'sum(erp_pipeline_events_consumed_total{topic="erp.submissions"})',
        'sum(erp_pipeline_events_consumed_total{topic="erp.status"})',
        'sum(erp_pipeline_events_consumed_total{topic="erp.exports"})',
        'sum(erp_pipeline_events_produced_total{topic="erp.status"})',
    ):
        assert prometheus.wait(worker_metric, lambda v: v >= 1) >= 1
    for group in ("erp-processor", "erp-projection", "erp-exporter"):
        lag = f'count(erp_pipeline_consumer_lag{{group="{group}"}})'
        assert prometheus.wait(lag, lambda v: v >= 1) >= 1
    assert prometheus.wait("max(erp_pipeline_consumer_lag)", lambda v: v >= 0) >= 0
    assert (
        prometheus.wait("count(erp_pipeline_last_commit_timestamp_seconds)", lambda v: v >= 2) >= 2
    )
    assert (
        prometheus.wait("min(process_resident_memory_bytes)", lambda v: v > 10_000_000) > 10_000_000
    )
