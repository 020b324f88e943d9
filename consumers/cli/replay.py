"""`erp-pipeline replay`: rebuild state from the topics, report decisions, verify the read model."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import sys
from pathlib import Path

import click

from consumers.cli.common import load_settings, run_async
from consumers.readmodel.queries import ReadModelUnavailable
from consumers.replay.read import ReplayOptions, ReplayResult, replay
from consumers.replay.verify import verify
from pipeline.replay.audit import table, to_csv, to_jsonl, totals
from pipeline.settings import Settings

SHOWN = [
    "item",
    "submission_version",
    "decision",
    "decided_by",
    "decided_at",
    "outcome",
    "refusal",
    "erp_reference",
    "export_error",
    "final_status",
]
PARTIAL = "PARTIAL REPLAY (interrupted): rows and totals cover only what was read"


def _time(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        at = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"not an RFC 3339 time: {value}") from None
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


async def _run(settings: Settings, options: ReplayOptions) -> ReplayResult:
    """Replay with Ctrl-C / SIGTERM ending the reading cleanly (the result is then partial)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return await replay(settings, options, stop)


def _write_report(path: Path, result: ReplayResult) -> None:
    rows = result.rebuilt.rows
    if path.suffix == ".jsonl":
        body = to_jsonl(rows)
        marker = '{"partial": true}\n'
    else:
        body = to_csv(rows)
        marker = f"# {PARTIAL}\n"
    path.write_text((marker if result.partial else "") + body, encoding="utf-8")


def _print_summary(result: ReplayResult) -> None:
    rows = result.rebuilt.rows
    if result.partial:
        click.echo(PARTIAL)
    click.echo(table(rows, SHOWN), nl=False)
    final = {k: s.status.value for k, s in result.rebuilt.states.items() if s.status is not None}
    counted = totals(rows, final)
    click.echo("\nitems by final status")
    for status, count in sorted(counted["status"].items()):
        click.echo(f"  {status:<20} {count}")
    click.echo("decisions by approver, decision, outcome")
    for who, count in sorted(counted["approver"].items()):
        click.echo(f"  {who:<60} {count}")
    click.echo(
        f"{result.records} records, {result.rebuilt.events} events applied, "
        f"{result.undecodable} undecodable, {result.elapsed_s:.2f}s"
    )


@click.command("replay")
@click.option("--from", "start", default=None, help="Report decisions from this time (RFC 3339).")
@click.option("--from-beginning", is_flag=True, help="Report every decision (the default).")
@click.option("--to", "end", default=None, help="Stop at this time (RFC 3339).")
@click.option("--company", default=None, help="Only this company's items.")
@click.option("--item", default=None, help="Only this item (company:type:id).")
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the audit rows here (.csv or .jsonl).",
)
@click.option(
    "--verify",
    "check",
    is_flag=True,
    help="Compare with the read model and erp.status; exit 1 on any difference.",
)
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
def replay_cmd(
    start: str | None,
    from_beginning: bool,
    end: str | None,
    company: str | None,
    item: str | None,
    report: Path | None,
    check: bool,
    quiet: bool,
) -> None:
    """Rebuild every item from the topics with the live rules and report who decided what.

    Sends no email, exports nothing and writes to no topic or table.
    """
    if start and from_beginning:
        raise click.UsageError("--from and --from-beginning exclude each other")
    if report is not None and report.suffix not in (".csv", ".jsonl"):
        raise click.BadParameter("the report must end in .csv or .jsonl", param_hint="--report")
    if check and end is not None:
        raise click.UsageError("--verify compares the state of now; it cannot be used with --to")
    settings = load_settings()
    options = ReplayOptions(
        start=_time(start),
        end=_time(end),
        company=company,
        item=item,
        progress=None if quiet else sys.stderr,
    )
    result = run_async(_run(settings, options))
    if report is not None:
        _write_report(report, result)
    _print_summary(result)
    if result.partial:
        sys.exit(130)
    if check:
        try:
            found = run_async(verify(settings, result.rebuilt.states, company, item))
        except ReadModelUnavailable as exc:
            raise click.ClickException(str(exc)) from None
        for line in found:
            click.echo(f"DIFFERENCE {line}")
        if found:
            click.echo(f"verify: {len(found)} difference(s)")
            sys.exit(1)
        click.echo("verify: the read model and erp.status match the replay")
