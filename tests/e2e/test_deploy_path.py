"""The deploy path from an empty database: exactly the set-up compose and k8s run, then an export.

`deploy/compose.yaml` and `deploy/k8s/erp-pipeline.yaml` run `erp-pipeline topics create &&
erp-pipeline db migrate` once before the workers start; nothing else prepares the databases.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pydantic import SecretStr

from consumers.dev import samples as se
from consumers.dev.stack import Stack
from pipeline.settings import Settings
from tests.support.db import create_database, drop_database
from tests.support.events import project_export
from tests.support.kafka import publish
from tests.support.paths import ROOT
from tests.support.processes import cli, env_for, worker
from tests.support.waiting import eventually
from topics.specs import EXPORTS

pytestmark = pytest.mark.timeout(240)

SETUP = re.compile(r'"sh", "-c", "(erp-pipeline topics create && erp-pipeline db migrate)"')


def _deploy_setup_commands() -> list[list[str]]:
    """The set-up command of compose and of k8s (they must be the same), split into commands."""
    found = {
        match.group(1)
        for path in ("deploy/compose.yaml", "deploy/k8s/erp-pipeline.yaml")
        for match in SETUP.finditer((ROOT / path).read_text(encoding="utf-8"))
    }
    assert len(found) == 1, f"compose and k8s set up differently: {found}"
    return [part.split()[1:] for part in found.pop().split(" && ")]


@pytest.fixture
def empty_database(settings: Settings) -> Iterator[str]:
    """A database nothing was ever applied to, on the test run's server."""
    name = f"erp_deploy_{uuid.uuid4().hex[:8]}"
    url = create_database(settings.require_database_url(), name)
    try:
        yield url
    finally:
        drop_database(settings.require_database_url(), name)


def test_the_deploy_set_up_prepares_an_empty_database_for_an_export(
    stack: Stack, settings: Settings, empty_database: str, tmp_path: Path
) -> None:
    prefix = f"{settings.erp_topic_prefix}deploy{uuid.uuid4().hex[:6]}."
    env = env_for(stack.env(), tmp_path, DATABASE_URL=empty_database, ERP_TOPIC_PREFIX=prefix)
    env.pop("ERP_DATABASE_URL", None)  # as deployed: the reference ERP shares DATABASE_URL
    for command in _deploy_setup_commands():
        done = cli(env, *command)
        assert done.returncode == 0, done.stdout + done.stderr

    deployed = settings.model_copy(
        update={"erp_topic_prefix": prefix, "database_url": SecretStr(empty_database)}
    )
    # the company's own ERP content (job templates), as it exists before any export
    with psycopg.connect(empty_database) as conn:
        conn.execute(
            "INSERT INTO spectrum.job_templates (company_id, template_code, description)"
            " VALUES (%s, 'COMM', 'Commercial building')",
            (se.COMPANY,),
        )
    # the export the processor asks for once a project is accepted (the processor's own path
    # to it is covered by the processor's tests; this one is about what the set-up prepared)
    item = f"prj-{uuid.uuid4().hex[:6]}"
    publish(deployed, EXPORTS, project_export(item, "J-DEP"))
    with worker("exporter", env, tmp_path / "exporter.log"):

        def exported() -> list[tuple[object, ...]]:
            with psycopg.connect(empty_database) as conn:
                return conn.execute(
                    "SELECT job_number FROM spectrum.jobs WHERE upstream_project_id = %s", (item,)
                ).fetchall()

        jobs = eventually(
            exported, timeout=120, message=f"{item} never became a job in the deployed ERP"
        )
    assert jobs == [("J-DEP",)]
