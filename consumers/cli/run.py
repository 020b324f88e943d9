"""CLI commands that run things: `dev`, `run`, `db migrate`."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import click
from aiokafka.errors import KafkaError

from consumers.cli.common import broker_error, load_settings, setup_logging
from consumers.dev.stack import Stack, running_stack
from consumers.dev.supervise import Supervisor, WorkerFailed
from consumers.export.spectrum import schema
from consumers.notify.smtp import SmtpTarget
from consumers.worker import db
from consumers.worker.registry import WORKERS
from pipeline.settings import ConfigurationError

#: How long `dev` and `demo` wait for every worker to be ready before saying so.
START_TIMEOUT_S = 120.0


def stop_requested() -> threading.Event:
    """An event set by SIGINT (Ctrl-C) or SIGTERM from now on (the handlers stay installed)."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def wait_for_stop_signal(
    stop: threading.Event | None = None, tick: Callable[[], None] | None = None
) -> None:
    """Block until SIGINT (Ctrl-C) or SIGTERM, calling `tick` (a supervisor's poll) meanwhile.

    An exception raised by `tick` ends the wait.
    """
    stop = stop_requested() if stop is None else stop
    while not stop.wait(0.5):
        if tick is not None:
            tick()


def start_supervised(
    stack: Stack,
    supervisor: Supervisor,
    stop: threading.Event | None,
    say: Callable[[str], None],
) -> None:
    """Start every `dev` worker and wait (bounded, or until `stop` is set) until each is ready,
    saying which are not.

    Raises WorkerFailed when a worker cannot start (exits with its restart budget spent).
    """
    dev_workers = [worker for worker in WORKERS.values() if worker.in_dev]
    if any(worker.name == "console" for worker in dev_workers):
        stack.reserve_console_port()  # the other workers' CONSOLE_PUBLIC_URL names it
    for worker in dev_workers:
        stack.start_worker(worker.name)
    say(f"starting workers (logs in {stack.log_dir}/<worker>.log)…")
    not_ready = supervisor.wait_ready(START_TIMEOUT_S, stop)
    if stop is not None and stop.is_set():
        return
    for label, reason in not_ready.items():
        say(f"worker {label} is not ready after {START_TIMEOUT_S:.0f}s: {reason}")


def describe_stack(stack: Stack) -> list[str]:
    """Human lines saying where everything is."""
    settings = stack.settings
    lines = [
        f"Kafka      {settings.require_bootstrap()}"
        + ("  (embedded, memory-only)" if stack.embedded_broker else ""),
        f"PostgreSQL {db.describe(settings.require_database_url())}"
        + (
            f"  (embedded, data in {settings.data_dir}/postgres)" if stack.embedded_postgres else ""
        ),
        f"Topics     prefix {settings.erp_topic_prefix!r}, see `erp-pipeline topics list`",
    ]
    if stack.maildrop is not None:
        lines.append(f"Mail       local sink, e-mails written to {stack.maildrop.resolve()}/*.eml")
    elif settings.smtp_url is not None:
        lines.append(f"Mail       {SmtpTarget.from_settings(settings).describe()}")
    if stack.console_url() is not None:
        lines.append(f"Console    {stack.console_url()}  (API {stack.console_url()}api/v1/docs)")
    lines += [
        f"Worker     {name}: pid {p.pid}, metrics http://127.0.0.1:{stack.metrics_ports[name]}/metrics"
        for name, p in stack.workers.items()
    ]
    return lines


@click.command("dev")
@click.option("--no-workers", is_flag=True, help="Start only the broker and the database.")
def dev_cmd(no_workers: bool) -> None:
    """Run the whole pipeline locally, in the foreground, until Ctrl-C / SIGTERM.

    Starts an embedded broker unless KAFKA_BOOTSTRAP_SERVERS is set and an embedded PostgreSQL
    unless DATABASE_URL is set, creates every topic, applies the schema, starts the workers
    and watches them: their logs are shown (and kept in DATA_DIR/logs), a worker that exits is
    reported with its last log lines and restarted; one that keeps exiting (3 restarts within
    2 minutes) stops the stack, and the command exits 1 with its error.
    """
    settings = load_settings()
    setup_logging(settings)
    try:
        with running_stack(settings) as stack:
            _run_dev(stack, no_workers)
    except WorkerFailed as exc:
        raise click.ClickException(f"{exc}\nThe stack was stopped.") from None
    click.echo("stopped.")


def _run_dev(stack: Stack, no_workers: bool) -> None:
    stop = stop_requested()
    supervisor = Supervisor(stack, say=click.echo, echo=lambda line: click.echo(line, err=True))
    if not no_workers:
        stack.log_dir = Path(stack.settings.data_dir) / "logs"
        start_supervised(stack, supervisor, stop, click.echo)
    if stop.is_set():
        click.echo("stopping…")
        return
    click.echo("ERP pipeline is running:")
    for line in describe_stack(stack):
        click.echo(f"  {line}")
    click.echo("  export these to use the CLI against it:")
    click.echo(f"    export KAFKA_BOOTSTRAP_SERVERS={stack.settings.require_bootstrap()}")
    if stack.embedded_postgres:
        # the embedded server's socket URL holds no password; one given in DATABASE_URL is
        # the user's own and never printed
        click.echo(f"    export DATABASE_URL='{stack.settings.require_database_url()}'")
    if stack.settings.kafka_single_record_batches:
        click.echo("    export KAFKA_SINGLE_RECORD_BATCHES=true")
    click.echo("Press Ctrl-C to stop.")
    wait_for_stop_signal(stop, supervisor.poll)
    click.echo("stopping…")


@click.command("run")
@click.argument("worker", type=click.Choice(sorted(WORKERS)) if WORKERS else str)
def run_cmd(worker: str) -> None:
    """Run one worker in the foreground against the configured broker and database."""
    if worker not in WORKERS:
        raise click.BadParameter(
            f"unknown worker {worker!r}; known: {', '.join(WORKERS) or 'none'}"
        )
    settings = load_settings()
    setup_logging(settings)
    try:
        WORKERS[worker].load()(settings)
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None
    except KafkaError as exc:  # at start-up: no broker to wait for, or an address that is not one
        raise broker_error(exc) from None


@click.group("db")
def db_group() -> None:
    """Manage the pipeline's PostgreSQL schema."""


@db_group.command("migrate")
def db_migrate_cmd() -> None:
    """Set up every database the workers need, from empty: DATABASE_URL's read model and sent
    ledger, and the reference ERP's schema with the export ledger at ERP_DATABASE_URL (default
    DATABASE_URL). Applies only what is not applied yet; safe to run on every deploy."""
    settings = load_settings()
    if settings.database_url is None:
        raise click.ClickException("DATABASE_URL is not set")
    try:
        applied = db.migrate(settings.database_url.get_secret_value())
        applied_erp = schema.migrate(settings.require_erp_database_url())
    except db.DatabaseError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"applied: {', '.join(applied)}" if applied else "schema is up to date")
    click.echo(
        f"ERP applied: {', '.join(applied_erp)}" if applied_erp else "ERP schema is up to date"
    )
