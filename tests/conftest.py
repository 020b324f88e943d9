"""Shared fixtures: the real embedded stack (or the configured one), isolated per test run."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from consumers.dev.services import embedded_services
from consumers.dev.stack import Stack, prepare
from pipeline.settings import Settings
from tests.support.db import create_database, drop_database
from tests.support.paths import ROOT


@pytest.fixture(scope="session")
def run_id() -> str:
    """A short id unique to this test run (topic prefix, database names)."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def stack(run_id: str) -> Iterator[Stack]:
    """The broker and PostgreSQL of this run, through the same code as `erp-pipeline dev`.

    Embedded services start unless KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL are set. Topics get
    a prefix unique to the run and the schema goes into a database created for the run.
    """
    base = Settings()
    want_broker = not base.kafka_bootstrap_servers
    want_postgres = base.database_url is None
    data_dir = ROOT / ".data" / "test"
    with embedded_services(broker=want_broker, postgres=want_postgres, data_dir=data_dir) as (
        bootstrap,
        embedded_url,
    ):
        server_url = embedded_url or base.require_database_url()
        dbname = f"erp_test_{run_id}"
        database_url = create_database(server_url, dbname)
        settings = base.model_copy(
            update={
                "kafka_bootstrap_servers": bootstrap or base.kafka_bootstrap_servers,
                "database_url": SecretStr(database_url),
                "erp_topic_prefix": f"t{run_id}.",
                "kafka_session_timeout_ms": 6000,
                # as `erp-pipeline dev` does for the embedded broker (see Settings)
                "kafka_single_record_batches": bool(bootstrap) or base.kafka_single_record_batches,
            }
        )
        prepare(settings)
        test_stack = Stack(settings, embedded_broker=want_broker, embedded_postgres=want_postgres)
        try:
            yield test_stack
        finally:
            test_stack.stop_workers()
            drop_database(server_url, dbname)


@pytest.fixture(scope="session")
def settings(stack: Stack) -> Settings:
    """Settings pointing at this run's broker, topics and database."""
    return stack.settings


@pytest.fixture
def worker_env(stack: Stack) -> dict[str, str]:
    """Environment for a subprocess (`erp-pipeline ...`) that must use this run's stack.

    METRICS_PORT=0 lets every worker a test starts bind a free port for /metrics.
    """
    return {**stack.env(), "METRICS_PORT": "0"}


#: Test tier (folder under tests/) → the marker its tests carry.
TIER_MARKERS = {
    "integration": pytest.mark.integration,
    "e2e": pytest.mark.e2e,
    "system": pytest.mark.system,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests under tests/integration, tests/e2e and tests/system carry their tier's marker."""
    for item in items:
        path = str(item.path)
        for tier, marker in TIER_MARKERS.items():
            if f"{os.sep}{tier}{os.sep}" in path:
                item.add_marker(marker)
