"""`erp-pipeline demo`: the embedded stack with every worker, and a scripted day on it."""

from __future__ import annotations

import asyncio
import email
import email.policy
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from consumers.cli.common import load_settings, setup_logging
from consumers.cli.run import (
    describe_stack,
    start_supervised,
    stop_requested,
    wait_for_stop_signal,
)
from consumers.dev import samples as se
from consumers.dev.demo import COMPANY, Story, StoryFailed, Watcher
from consumers.dev.screenshot import ScreenshotFailed, capture
from consumers.dev.stack import Stack, running_stack
from consumers.dev.supervise import Supervisor, WorkerFailed
from consumers.notify.emails import DAILY_SUMMARY_SUBJECT
from consumers.readmodel import queries
from pipeline.settings import Settings

console = Console(highlight=False)

VIEWS = {
    "Ready to Export": "ready_to_export",
    "Failed to Export": "failed_to_export",
    "Synced": "synced",
}


async def _play(story: Story, supervisor: Supervisor) -> None:
    """The story, while the supervisor watches the workers (a worker that cannot be kept
    running ends the story with WorkerFailed)."""
    watcher = Watcher(story.settings)
    await watcher.start()
    play = asyncio.create_task(story.play(watcher))
    watch = asyncio.create_task(supervisor.watch())
    try:
        await asyncio.wait({play, watch}, return_when=asyncio.FIRST_COMPLETED)
        if watch.done():
            watch.result()  # raises WorkerFailed
        await play
    finally:
        for task in (play, watch):
            task.cancel()
        await asyncio.gather(play, watch, return_exceptions=True)
        await watcher.stop()


def _view(settings: Settings, title: str, status: str, keys: list[str]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("item", "number", "title", "amount", "sent by", "error / ERP ref"):
        table.add_column(column)
    shown = set(keys)
    for row in queries.queue(settings.require_database_url(), COMPANY, status):
        if f"{COMPANY}:{row['item']}" not in shown:
            continue
        table.add_row(
            row["item"],
            row["number"] or "",
            row["title"] or "",
            str(row["amount"] or ""),
            row["sent_by"] or "",
            row["error"] or row["erp_reference"] or "",
        )
    return table


def _emails(maildrop: Path, want_summary: bool, timeout_s: float = 60) -> list[Any]:
    """The e-mails in the mail drop, waiting (bounded) for the daily summary to arrive."""
    deadline = time.monotonic() + timeout_s
    while True:
        messages = [
            email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            for path in sorted(maildrop.glob("*.eml"))
        ]
        subjects = [str(m["Subject"]) for m in messages]
        if not want_summary or DAILY_SUMMARY_SUBJECT in subjects:
            return messages
        if time.monotonic() > deadline:
            raise StoryFailed("the daily summary e-mail did not arrive")
        time.sleep(0.2)


def _finale(stack: Stack, story: Story) -> None:
    settings = stack.settings
    console.print(f"\nThe views of today's items (run {story.tag}):")
    for title, status in VIEWS.items():
        console.print(_view(settings, title, status, list(story.keys.values())))
    if stack.maildrop is not None:
        table = Table(title=f"E-mails in {stack.maildrop}", title_justify="left")
        table.add_column("to")
        table.add_column("subject")
        messages = _emails(stack.maildrop, want_summary=True)
        for message in messages:
            table.add_row(str(message["To"]), str(message["Subject"]))
        console.print(table)
        summary = next(m for m in messages if str(m["Subject"]) == DAILY_SUMMARY_SUBJECT)
        text = summary.get_body(preferencelist=("plain",))
        console.print(f"\n[bold]{DAILY_SUMMARY_SUBJECT}[/] to {escape(str(summary['To']))}:")
        console.print(escape(text.get_content() if text is not None else ""))
    for name, port in stack.metrics_ports.items():
        console.print(f"[bold]/metrics[/] of {name}: http://127.0.0.1:{port}/metrics")
    console.print(
        "\nExplore further (in another shell, with the environment printed above):\n"
        f"  erp-pipeline queue --company {COMPANY} --view ready-to-export\n"
        f"  erp-pipeline history {COMPANY}:commitment:<id>\n"
        "  erp-pipeline tail erp.status\n"
        "  erp-pipeline tail erp.dead-letters\n"
        "  erp-pipeline publish erp.submissions docs/examples/project-submitted.json"
    )


@click.command("demo")
@click.option("--once", is_flag=True, help="Play the story and exit instead of running on.")
@click.option(
    "--screenshot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="After the story, save the console's Ready to Export view (Commitments) as this PNG"
    " (Playwright driving /usr/bin/chromium), then exit. `make screenshot` refreshes"
    " docs/images/ready-to-export.png.",
)
def demo_cmd(once: bool, screenshot: Path | None) -> None:
    """Start the embedded stack with every worker and play a scripted day in the ERP tool.

    The workers are watched as `dev` watches them: one that exits is reported and restarted,
    one that keeps exiting stops the demo with its error (exit code 1).
    """
    settings = load_settings()
    setup_logging(settings.model_copy(update={"log_level": "WARNING"}))
    console.print("[bold]ERP accounting-acceptance pipeline: a day in the ERP Integrations tool[/]")
    try:
        with running_stack(settings) as stack:
            _run_demo(stack, once or screenshot is not None, screenshot)
    except ScreenshotFailed as exc:
        raise click.ClickException(f"no screenshot: {exc}") from None
    except WorkerFailed as exc:
        raise click.ClickException(f"the demo stopped: {exc}") from None
    except StoryFailed as exc:
        raise click.ClickException(f"the demo did not complete: {exc}") from None


def _say(text: str) -> None:
    console.print(f"[bold red]![/] {escape(text)}")


def _run_demo(stack: Stack, once: bool, screenshot: Path | None = None) -> None:
    # Until the story ends, SIGTERM and Ctrl-C interrupt whatever runs (KeyboardInterrupt,
    # see `sigterm_as_ctrl_c`); the stack is stopped on the way out.
    stack.log_dir = Path(stack.settings.data_dir) / "logs"
    supervisor = Supervisor(stack, say=_say)
    start_supervised(stack, supervisor, None, lambda text: console.print(f"  {escape(text)}"))
    for line in describe_stack(stack):
        console.print(f"  {escape(line)}")
    console.print(f"  export KAFKA_BOOTSTRAP_SERVERS={stack.settings.require_bootstrap()}")
    if stack.settings.kafka_single_record_batches:
        console.print("  export KAFKA_SINGLE_RECORD_BATCHES=true")
    story = Story(
        stack.settings,
        lambda text: console.print(f"[cyan]▸[/] {escape(text)}"),
        console_url=stack.console_url(),
    )
    asyncio.run(_play(story, supervisor))
    _finale(stack, story)
    console_url = stack.console_url()
    if screenshot is not None and console_url is not None:
        capture(console_url, COMPANY, se.APPROVER["name"], screenshot)
        console.print(f"\nScreenshot of Ready to Export: {screenshot}")
    if once:
        return
    console.print("\nRunning; press Ctrl-C to stop.")
    wait_for_stop_signal(stop_requested(), supervisor.poll)
