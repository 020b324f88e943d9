"""Events published with librdkafka clients (kcat, confluent-kafka) as the README shows.

They are processed exactly like those published from Python with aiokafka, through to the
exporter's result: with the README's `partitioner=murmur2_random` they land on the partition
the pipeline's own producers use, and nothing is re-routed.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from consumers.dev import samples as se
from consumers.dev.stack import Stack
from pipeline.kafka import read_all
from pipeline.processor import routing
from pipeline.settings import Settings
from tests.support.db import seeded_company
from tests.support.kafka import about, publish, wait_for_events
from tests.support.paths import ROOT
from tests.support.processes import env_for, start_worker, stop_all
from topics.specs import DEAD_LETTERS, DECISIONS, DIRECTORY, ITEM_ROUTES, STATUS, SUBMISSIONS

pytestmark = pytest.mark.timeout(180)


def readme_kcat_command() -> str:
    """The kcat command of the README's "Publishing events" section, as printed there."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(kcat -P.*?)\n```", text, re.S)
    assert block, "the README shows no kcat command"
    return block.group(1)


def readme_kcat_options() -> dict[str, str]:
    """The librdkafka properties (`-X name=value`) the README's kcat command sets."""
    return dict(re.findall(r"-X (\S+?)=(\S+)", readme_kcat_command()))


def accept_of(item: str) -> dict[str, object]:
    """An accept of the README's example project under `item`, with a job id of its own."""
    accepted = se.accepted(
        "project", item, erp_job_id=f"K{uuid.uuid4().hex[:8]}", job_template="COMM"
    )
    accepted["payload"]["submission_version"] = 1  # held if read before the submission
    return accepted


@pytest.fixture
def directory(stack: Stack) -> Settings:
    """The example's company in the directory (with its approver) and in the reference ERP."""
    publish(stack.settings, DIRECTORY, se.company_settings(), se.approver_updated(se.APPROVER))
    seeded_company(stack.settings, se.COMPANY)
    return stack.settings


def synced(settings: Settings, item: str) -> object:
    """The item's `synced` status, once it is on erp.status."""
    return wait_for_events(
        settings, STATUS, lambda e: about(item)(e) and e.payload.status.value == "synced"
    )[-1]


def kcat_reaches(bootstrap: str) -> str | None:
    """None when kcat can talk to the broker, else why not."""
    if shutil.which("kcat") is None:
        return "kcat is not installed"
    probe = subprocess.run(
        ["kcat", "-L", "-b", bootstrap, "-m", "5"], capture_output=True, text=True, timeout=30
    )
    if probe.returncode != 0:
        # Debian's kcat 1.7.1 bundles librdkafka 2.0.2, whose ApiVersions request the embedded
        # broker answers in a form it cannot read; recent librdkafka (below) works.
        return f"this kcat cannot reach the broker: {probe.stderr.strip().splitlines()[-1]}"
    return None


def test_kcat_publish_as_documented_is_processed_through_to_synced(
    stack: Stack, directory: Settings, tmp_path: Path
) -> None:
    problem = kcat_reaches(stack.settings.require_bootstrap())
    if problem:
        pytest.skip(problem)
    command = readme_kcat_command()
    example = json.loads((ROOT / "docs/examples/project-submitted.json").read_text())
    item = f"prj-kcat-{uuid.uuid4().hex[:6]}"
    example["event_id"] = str(uuid.uuid4())
    example["item"]["id"] = item
    path = tmp_path / "project-submitted.json"
    path.write_text(json.dumps(example, indent=2))
    accept_path = tmp_path / "project-accepted.json"
    accept_path.write_text(json.dumps(accept_of(item), indent=2))
    bad = json.loads((ROOT / "docs/examples/invalid-amount.json").read_text())
    bad["event_id"] = str(uuid.uuid4())
    bad_path = tmp_path / "invalid-amount.json"
    bad_path.write_text(json.dumps(bad, indent=2))

    settings = stack.settings
    env = {**stack.env(), "KAFKA_BOOTSTRAP_SERVERS": settings.require_bootstrap()}
    topic = settings.topic("erp.submissions")
    commands = [
        command.replace("-t erp.submissions", f"-t {topic}")
        .replace("prj-100", item)
        .replace("docs/examples/project-submitted.json", str(path)),
        command.replace("-t erp.submissions", f"-t {settings.topic('erp.decisions')}")
        .replace("prj-100", item)
        .replace("event_type=ItemSubmitted", "event_type=ItemAccepted")
        .replace("docs/examples/project-submitted.json", str(accept_path)),
        command.replace("-t erp.submissions", f"-t {topic}").replace(
            "docs/examples/project-submitted.json", str(bad_path)
        ),
    ]
    for shell in commands:
        done = subprocess.run(
            ["bash", "-c", shell], env=env, capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, done.stderr
    data = tmp_path / "processor"
    workers = [
        start_worker(name, env_for(stack.env(), data), data / f"{name}.log")
        for name in ("processor", "exporter")
    ]
    try:
        (status,) = wait_for_events(
            settings, STATUS, lambda e: about(item)(e) and e.payload.submission_version == 1
        )[:1]
        assert status.payload.status.value == "ready_to_export"
        assert status.correlation_id == "send-to-erp-7731"
        # the exporter's result (murmur2) reaches the item the kcat records made
        assert synced(settings, item).payload.erp_reference
        (dead,) = wait_for_events(
            settings, DEAD_LETTERS, lambda e: e.payload.refused_event_id == bad["event_id"]
        )
        assert dead.payload.stage.value == "schema" and "payload.amount" in dead.payload.error
    finally:
        stop_all(workers)


def test_librdkafka_publish_with_the_readme_settings_takes_the_cheapest_path(
    stack: Stack, directory: Settings, tmp_path: Path
) -> None:
    """confluent-kafka with the README's kcat properties, key and headers: its records land
    where murmur2 puts them, nothing is re-routed, and the item ends synced."""
    confluent_kafka = pytest.importorskip("confluent_kafka")
    settings = stack.settings
    options = readme_kcat_options()
    assert options.get("partitioner") == "murmur2_random", "the README sets no partitioner"
    example = json.loads((ROOT / "docs/examples/project-submitted.json").read_text())
    item = f"prj-rdk-{uuid.uuid4().hex[:6]}"
    example["event_id"] = str(uuid.uuid4())
    example["item"]["id"] = item
    key = f"acme-builders:project:{item}".encode()
    producer = confluent_kafka.Producer(
        {"bootstrap.servers": settings.require_bootstrap(), **options}
    )
    delivered: list[int] = []
    for spec, event, event_type in (
        (SUBMISSIONS, example, "ItemSubmitted"),
        (DECISIONS, accept_of(item), "ItemAccepted"),
    ):
        producer.produce(
            settings.topic(spec.name),
            json.dumps(event).encode(),
            key=key,
            headers=[("event_type", event_type.encode()), ("schema_version", b"1")],
            on_delivery=lambda error, message: delivered.append(message.partition()),
        )
    assert producer.flush(30) == 0
    home = routing.home_partition(key, SUBMISSIONS.partitions)
    assert delivered == [home, home]
    data = tmp_path / "processor"
    workers = [
        start_worker(name, env_for(stack.env(), data), data / f"{name}.log")
        for name in ("processor", "exporter")
    ]
    try:
        status = synced(settings, item)
        assert status.correlation_id
    finally:
        stop_all(workers)
    routed = asyncio.run(read_all(settings, ITEM_ROUTES))
    assert [r for r in routed if r.key == key] == []
