"""`erp-pipeline bench`: throughput, latency and memory on the configured (or embedded) stack."""

from __future__ import annotations

import json
import math
import os
import uuid
from pathlib import Path

import click

from consumers.cli.common import broker_errors, load_settings, setup_logging


@click.command("bench")
@click.option(
    "--items",
    default=2000,
    show_default=True,
    type=click.IntRange(min=1, max=100_000),
    help="Items in the end-to-end run (at most 100000).",
)
@click.option(
    "--types", "types_", default="mix", show_default=True, help="mix, or e.g. project,commitment."
)
@click.option(
    "--pending",
    default=100_000,
    show_default=True,
    type=click.IntRange(min=1, max=500_000),
    help="Items left pending for the memory figure (at most 500000).",
)
@click.option(
    "--load-seconds",
    default=600.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True, max=3600),
    callback=lambda _ctx, _param, value: _finite(value, "--load-seconds"),
    help="How long the 20 % load run (the soak, RSS sampled) lasts (at most 3600).",
)
@click.option(
    "--min-samples",
    default=200,
    show_default=True,
    type=click.IntRange(min=1, max=100_000),
    help="Fewest items in each latency percentile of the load run, its n (at most 100000).",
)
@click.option(
    "--baseline-events",
    default=0,
    type=click.IntRange(min=0, max=1_000_000),
    help="Records in the raw baseline, at most 1000000 [default: 10 per item, at least 5000,"
    " at most 50000].",
)
@click.option("--no-faust-reference", is_flag=True, help="Skip the faust reference agent.")
@click.option(
    "--no-foreign-partitioner", is_flag=True, help="Skip the re-routed (foreign partitioner) runs."
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report as JSON.",
)
def bench_cmd(
    items: int,
    types_: str,
    pending: int,
    load_seconds: float,
    min_samples: int,
    baseline_events: int,
    no_faust_reference: bool,
    no_foreign_partitioner: bool,
    json_path: Path | None,
) -> None:
    """Measure the pipeline against a raw aiokafka baseline in the same run.

    Runs on the configured broker and database, or embedded ones, under a topic prefix of its
    own: the raw hops (a raw client's producer defaults, and one record per batch), N items end
    to end with an automatic approver (90 % accepted), N more published with a partitioner that
    never picks the partition murmur2 names (every record re-routed by the processor; reported
    as a ratio to the native run, and again for the processor alone), the processor's memory per
    item with --pending items waiting in ready_to_export, the load run at 20 % of the measured
    maximum for --load-seconds with the processor's RSS sampled (the soak), replay and the faust
    reference. Ends with the issue's Targets table, measured column and reached marks.

    A worker that exits during the run (killed, crashed, or stopped by a Ctrl-C that reached
    it), or is found stopped (SIGSTOP, a debugger), stops the run at once with exit code 1 and
    its name: no figures are printed or written from a broken run. An unreachable broker is
    one error line (exit 1) after 30 s.
    """
    from consumers.bench import workload
    from consumers.bench.report import print_table
    from consumers.bench.run import Options, WorkerExited, run_all
    from consumers.dev.stack import running_stack

    try:
        types = workload.item_types(types_)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--types") from None
    if json_path is not None:
        _check_writable(json_path)
    # workers are child processes configured from the environment: quick group joins, quiet logs
    os.environ.setdefault("KAFKA_SESSION_TIMEOUT_MS", "6000")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    settings = load_settings()
    setup_logging(settings)
    prefix = f"{settings.erp_topic_prefix}bench{uuid.uuid4().hex[:8]}."
    settings = settings.model_copy(update={"erp_topic_prefix": prefix})
    options = Options(
        items=items,
        types=types,
        pending=pending,
        load_seconds=load_seconds,
        min_samples=min_samples,
        baseline_events=baseline_events,
        faust_reference=not no_faust_reference,
        foreign=not no_foreign_partitioner,
    )
    where = settings.kafka_bootstrap_servers or "an embedded broker"
    click.secho(
        f"▸ preparing: {where}, the database, topics and schema (a broker that does not "
        "answer is given 30 s)",
        fg="cyan",
        err=True,
    )
    with broker_errors(), running_stack(settings) as stack:
        try:
            report = run_all(
                stack, options, say=lambda text: click.secho(f"▸ {text}", fg="cyan", err=True)
            )
        except WorkerExited as exc:
            raise click.ClickException(str(exc)) from None
    print_table(report)
    if json_path is not None:
        try:
            json_path.write_text(json.dumps(report, indent=2))
        except OSError as exc:  # the folder went away during the run: keep the report
            click.echo(f"could not write {json_path} ({exc.strerror}); the report:", err=True)
            click.echo(json.dumps(report, indent=2))
            raise SystemExit(1) from None
        click.echo(f"report written to {json_path}", err=True)


def _finite(value: float, name: str) -> float:
    """`value`, refused when it is not a finite number (`nan` passes a range check)."""
    if not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a number of seconds", param_hint=name)
    return value


def _check_writable(path: Path) -> None:
    """Refuse, before a run of many minutes, a report path that could not be written.

    A permission check alone passes root anywhere, /proc included: a file that does not exist
    yet is created in its folder and removed again (`O_EXCL`: nothing of the user's is
    touched; through a dangling symbolic link, the link's target is checked). A path that
    exists must be a regular file (a FIFO would block here, a device is no report), opened
    for appending, which changes nothing.
    """
    if str(path) == "-" or path.is_dir():  # '' arrives as Path('.'), a folder
        raise click.BadParameter("a file name is needed", param_hint="--json")
    target = path.resolve()  # follows links, dangling ones included
    if not target.parent.is_dir():
        raise click.BadParameter(
            f"no folder {str(target.parent)!r} to write it in", param_hint="--json"
        )
    try:
        if target.exists():
            if not target.is_file():
                raise click.BadParameter(
                    f"{str(path)!r} is not a regular file", param_hint="--json"
                )
            with target.open("a"):
                pass
        else:
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            target.unlink()
    except OSError as exc:
        raise click.BadParameter(
            f"cannot write {str(path)!r} ({exc.strerror})", param_hint="--json"
        ) from None
