"""Upstream events published with librdkafka's default partitioner (confluent-kafka's
`consistent_random`, CRC32) while the pipeline's own workers publish with murmur2: every event of
an item still reaches its state, through to `synced` and to `failed_to_export`."""

from __future__ import annotations

import asyncio
import json
import uuid
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

from consumers.dev import samples as se
from consumers.dev.stack import Stack
from pipeline.processor import routing
from pipeline.settings import Settings
from tests.support.db import rows, seeded_company
from tests.support.events import for_company
from tests.support.kafka import Sender, isolated, publish
from tests.support.processes import env_for, start_worker, stop_all
from tests.support.waiting import eventually
from topics.specs import DECISIONS, DIRECTORY, SUBMISSIONS

pytestmark = pytest.mark.timeout(240)

COMPANY = "acme-route"
PARTITIONS = SUBMISSIONS.partitions


@pytest.fixture(scope="module")
def pipeline(
    stack: Stack, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """Topics of this module's own, a seeded company with its approver, and the processor,
    exporter and projection running as `erp-pipeline run` runs them."""
    mine = asyncio.run(isolated(settings, "route"))
    seeded_company(mine, COMPANY)
    publish(
        mine,
        DIRECTORY,
        for_company(COMPANY, se.company_settings()),
        for_company(COMPANY, se.approver_updated(se.APPROVER)),
    )
    data = tmp_path_factory.mktemp("route")
    env = env_for(stack.env(), data, ERP_TOPIC_PREFIX=mine.erp_topic_prefix)
    workers = [
        start_worker(name, env, data / f"{name}.log")
        for name in ("processor", "exporter", "projection")
    ]
    try:
        yield mine
    finally:
        stop_all(workers)


def _foreign_project() -> tuple[str, bytes]:
    """A project whose key librdkafka's default partitioner (CRC32) puts on another partition
    than murmur2 (Java, aiokafka, faust, the pipeline's own producers) does."""
    while True:
        item = f"prj-{uuid.uuid4().hex[:8]}"
        key = f"{COMPANY}:project:{item}".encode()
        if zlib.crc32(key) % PARTITIONS != routing.home_partition(key, PARTITIONS):
            return item, key


async def _send_with_librdkafka_defaults(
    settings: Settings, events: list[tuple[Any, dict[str, Any]]], key: bytes
) -> None:
    async with Sender(settings) as sender:
        for spec, event in events:
            partition, _ = await sender.send(
                spec, json.dumps(event).encode(), key=key, client="confluent"
            )
            # consistent_random: CRC32 of the key, not the partition the item's state is on
            assert partition == zlib.crc32(key) % PARTITIONS
            assert partition != routing.home_partition(key, PARTITIONS)


def _wait_status(settings: Settings, item: str, status: str) -> None:
    def reached() -> bool:
        found = rows(
            settings,
            "SELECT status FROM items WHERE company_id = %s AND item_id = %s",
            COMPANY,
            item,
        )
        return found == [(status,)]

    eventually(reached, timeout=90, message=f"{item} never became {status} in the read model")


def _submitted_and_accepted(item: str, job: str, template: str) -> list[tuple[Any, dict[str, Any]]]:
    submitted = for_company(COMPANY, se.project_submitted(item, project_number=job))
    accepted = se.accepted("project", item, erp_job_id=job, job_template=template)
    accepted["payload"]["submission_version"] = 1  # held, if read before the submission
    return [(SUBMISSIONS, submitted), (DECISIONS, for_company(COMPANY, accepted))]


async def test_an_item_sent_and_accepted_with_librdkafka_defaults_ends_synced(
    pipeline: Settings,
) -> None:
    item, key = _foreign_project()
    job = f"R{uuid.uuid4().hex[:8]}"
    await _send_with_librdkafka_defaults(pipeline, _submitted_and_accepted(item, job, "COMM"), key)
    await asyncio.to_thread(_wait_status, pipeline, item, "synced")


async def test_an_item_whose_export_fails_with_librdkafka_defaults_ends_failed_to_export(
    pipeline: Settings,
) -> None:
    item, key = _foreign_project()
    job = f"R{uuid.uuid4().hex[:8]}"
    await _send_with_librdkafka_defaults(
        pipeline, _submitted_and_accepted(item, job, "NO-SUCH-TEMPLATE"), key
    )
    await asyncio.to_thread(_wait_status, pipeline, item, "failed_to_export")
