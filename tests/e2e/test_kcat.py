"""Events published with librdkafka clients (kcat, confluent-kafka) as the README shows.

They are processed exactly like those published from Python with aiokafka.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from consumers.dev.stack import Stack
from tests.support.kafka import about, wait_for_events
from tests.support.paths import ROOT
from tests.support.processes import env_for, worker
from topics.specs import DEAD_LETTERS, STATUS

pytestmark = pytest.mark.timeout(180)


def readme_kcat_command() -> str:
    """The kcat command of the README's "Publishing events" section, as printed there."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(kcat -P.*?)\n```", text, re.S)
    assert block, "the README shows no kcat command"
    return block.group(1)


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


def test_kcat_publish_as_documented_is_processed(stack: Stack, tmp_path: Path) -> None:
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
    with worker("processor", env_for(stack.env(), data), data / "processor.log"):
        (status,) = wait_for_events(settings, STATUS, about(item))
        assert status.payload.status.value == "ready_to_export"
        assert status.correlation_id == "send-to-erp-7731"
        (dead,) = wait_for_events(
            settings, DEAD_LETTERS, lambda e: e.payload.refused_event_id == bad["event_id"]
        )
        assert dead.payload.stage.value == "schema" and "payload.amount" in dead.payload.error


def test_librdkafka_publish_with_the_readme_key_and_headers_is_processed(
    stack: Stack, tmp_path: Path
) -> None:
    confluent_kafka = pytest.importorskip("confluent_kafka")
    settings = stack.settings
    example = json.loads((ROOT / "docs/examples/project-submitted.json").read_text())
    item = f"prj-rdk-{uuid.uuid4().hex[:6]}"
    example["event_id"] = str(uuid.uuid4())
    example["item"]["id"] = item
    producer = confluent_kafka.Producer({"bootstrap.servers": settings.require_bootstrap()})
    producer.produce(
        settings.topic("erp.submissions"),
        json.dumps(example).encode(),
        key=f"acme-builders:project:{item}".encode(),
        headers=[("event_type", b"ItemSubmitted"), ("schema_version", b"1")],
    )
    assert producer.flush(30) == 0
    data = tmp_path / "processor"
    with worker("processor", env_for(stack.env(), data), data / "processor.log"):
        (status,) = wait_for_events(settings, STATUS, about(item))
    assert status.payload.status.value == "ready_to_export"
    assert status.correlation_id == "send-to-erp-7731"
