"""`erp-pipeline demo`: the embedded stack with every worker, and a scripted day on it."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from consumers import sample_events as se
from consumers.cli.common import load_settings, setup_logging
from consumers.cli.stack import describe_stack, wait_for_stop_signal
from consumers.devstack import running_stack
from consumers.kafka import make_producer, publish, read_all
from consumers.workers import WORKERS
from pipeline.settings import Settings
from topics import TopicSpec, decode
from topics.specs import DIRECTORY, SUBMISSIONS


def _step(text: str) -> None:
    click.secho(f"▸ {text}", fg="cyan")


async def _publish_and_read_back(
    settings: Settings, spec: TopicSpec, raw: list[dict[str, Any]]
) -> int:
    """Publish contract events, then read the topic back and count what came back decoded."""
    events = [decode(_json(item), spec) for item in raw]
    producer = make_producer(settings)
    await producer.start()
    try:
        for event in events:
            await publish(producer, settings, spec, event)
    finally:
        await producer.stop()
    wanted = {str(e.event_id) for e in events}
    seen = {str(decode(record.value, spec).event_id) for record in await read_all(settings, spec)}
    return len(wanted & seen)


def _json(value: dict[str, Any]) -> str:
    import json

    return json.dumps(value)


@click.command("demo")
@click.option("--once", is_flag=True, help="Play the story and exit instead of running on.")
def demo_cmd(once: bool) -> None:
    """Start the embedded stack with every worker and play a scripted day on it."""
    settings = load_settings()
    setup_logging(settings.model_copy(update={"log_level": "WARNING"}))
    _step("starting the embedded stack (broker, PostgreSQL, topics, schema, workers)")
    with running_stack(settings) as stack:
        for worker in WORKERS.values():
            if worker.in_dev:
                stack.start_worker(worker.name)
        for line in describe_stack(stack):
            click.echo(f"  {line}")
        _step("publishing the demo company's approvers and settings to erp.directory")
        directory = [
            se.company_settings(),
            se.approver_updated(se.APPROVER),
            se.approver_updated(se.VIEWER, privileged=False),
        ]
        count = asyncio.run(_publish_and_read_back(stack.settings, DIRECTORY, directory))
        click.echo(f"  {count}/{len(directory)} directory events round-tripped through Kafka")
        _step("a project manager sends a project to the ERP (erp.submissions)")
        submissions = [se.project_submitted()]
        count = asyncio.run(_publish_and_read_back(stack.settings, SUBMISSIONS, submissions))
        click.echo(f"  {count}/{len(submissions)} submission round-tripped through Kafka")
        if once:
            return
        click.echo("Running; press Ctrl-C to stop.")
        wait_for_stop_signal()
