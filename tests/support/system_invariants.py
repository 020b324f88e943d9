"""The end-of-run checks: nothing lost, nothing doubled, read from topics, read model, ERP, sink."""

from __future__ import annotations

import asyncio
from collections import Counter

from pipeline.kafka import make_consumer, partitions_of, read_all, stop_consumer
from pipeline.processor.config import APP_NAME
from tests.support.db import erp_rows, rows, statuses
from tests.support.kafka import decoded
from tests.support.notifier import mail_ids
from tests.support.processes import cli
from tests.support.system import System
from tests.support.system_scripts import BASE_PROJECT, Item
from tests.support.waiting import eventually
from topics import decode
from topics.specs import (
    DEAD_LETTERS,
    EXPORT_RESULTS,
    EXPORTS,
    FAILED_TO_EXPORT,
    NOTIFICATIONS,
    STATUS,
)


def _want(item: Item, phase: str) -> str:
    return item.script.final if phase == "final" else item.after_first_phase


def final_statuses_reached(system: System, items: list[Item], phase: str = "final") -> bool:
    """Whether the read model shows every item at its phase's status."""
    now = statuses(system.settings, items[0].company)
    return all(now.get(i.id) == _want(i, phase) for i in items)


def lagging(system: System, items: list[Item], phase: str = "final") -> str:
    """The items not yet at their status, and one's history (for failure messages)."""
    now = statuses(system.settings, items[0].company)
    behind = [i for i in items if now.get(i.id) != _want(i, phase)]
    off = Counter((now.get(i.id), _want(i, phase)) for i in behind)
    history = [
        rows(
            system.settings,
            "SELECT status, previous_status, reason FROM item_history"
            " WHERE company_id = %s AND item_id = %s ORDER BY occurred_at, source_offset",
            i.company,
            i.id,
        )
        for i in behind[:1]
    ]
    stuck = {i.id for i in behind if now.get(i.id) == "exporting"}
    trail = Counter(
        e.event_type
        for spec in (EXPORTS, EXPORT_RESULTS, FAILED_TO_EXPORT)
        for e in decoded(system.settings, spec)
        if e.company_id == items[0].company and e.item.id in stuck
    )
    return (
        f"(status now, status wanted) → items: {dict(off)}; e.g. {behind[:1]}: {history};"
        f" events of the {len(stuck)} items in exporting: {dict(trail)};"
        f" {_where_results_are(system, items[0].company, stuck)}"
    )


def _where_results_are(system: System, company: str, stuck: set[str]) -> str:
    """For items stuck in `exporting`: where their results sit on erp.export-results against
    the processor group's committed offsets, and what was dead-lettered about them."""
    if not stuck:
        return ""
    group = system.settings.topic(APP_NAME)
    results = system.settings.topic(EXPORT_RESULTS.name)
    committed = asyncio.run(_committed(system, group))
    where = []
    for record in asyncio.run(read_all(system.settings, EXPORT_RESULTS)):
        event = decode(record.value, EXPORT_RESULTS)
        if event.company_id == company and event.item.id in stuck:
            mark = committed.get((results, record.partition))
            where.append(f"p{record.partition}@{record.offset}(committed {mark})")
    refused = Counter(
        (e.payload.source.topic, e.payload.stage.value, e.payload.error[:60])
        for e in decoded(system.settings, DEAD_LETTERS)
        if (key := e.payload.source.key) and key.rpartition(":")[2] in stuck
    )
    return f"results at {sorted(where)[:12]}; dead letters about them: {dict(refused)}"


async def _committed(system: System, group: str) -> dict[tuple[str, int], int]:
    """The group's committed offsets on erp.export-results (asked, not joined)."""
    consumer = make_consumer(system.settings, group_id=group)
    await consumer.start()
    try:
        name = system.settings.topic(EXPORT_RESULTS.name)
        found = {}
        for tp in await partitions_of(consumer, name):
            found[(name, tp.partition)] = await consumer.committed(tp)
        return found
    finally:
        await stop_consumer(consumer)


def check_statuses(system: System, items: list[Item]) -> None:
    """Read model and erp.status agree with each script; nothing sits in `exporting`."""
    company = items[0].company
    want = {i.id: i.script.final for i in items} | {BASE_PROJECT: "synced"}
    assert statuses(system.settings, company) == want
    latest: dict[str, str] = {}
    for event in decoded(system.settings, STATUS):
        if event.company_id == company:
            latest[event.item.id] = event.payload.status.value
    assert latest == want
    assert "exporting" not in latest.values()


def check_erp(system: System, items: list[Item]) -> None:
    """Exactly one ERP record per synced item, none for any other."""
    company = items[0].company
    jobs = Counter(
        str(row[0])
        for row in erp_rows(
            system.settings,
            "SELECT upstream_project_id FROM spectrum.jobs WHERE company_id = %s",
            company,
        )
    )
    commitments = Counter(
        str(row[0])
        for row in erp_rows(
            system.settings,
            "SELECT upstream_id FROM spectrum.commitments WHERE company_id = %s",
            company,
        )
    )
    want_jobs = {i.id: 1 for i in items if i.exported and i.kind == "project"}
    want_commitments = {i.id: 1 for i in items if i.exported and i.kind == "commitment"}
    assert dict(jobs) == want_jobs | {BASE_PROJECT: 1}
    assert dict(commitments) == want_commitments


def check_mail(
    system: System,
    items: list[Item],
    *,
    exact: bool = False,
    rejected: frozenset[str] = frozenset(),
) -> None:
    """One e-mail per notification of the company (each message names its event).

    A repeat is allowed only where the sent-ledger recorded a second claim of a `sending` row:
    the notifier's documented at-least-once window (a worker killed, or its partition moved,
    between SMTP accepting the message and `sent` being recorded). With `exact`, none at all.
    """
    company = items[0].company
    notices = [e for e in decoded(system.settings, NOTIFICATIONS) if e.company_id == company]
    wanted = {str(e.event_id) for e in notices}
    rejections: dict[str, set[str]] = {}
    for e in notices:
        if e.event_type == "RejectionNotice":
            rejections.setdefault(e.item.id, set()).add(str(e.event_id))
    assert {k: len(v) for k, v in rejections.items()} == {
        i.id: 1 for i in items if i.rejections
    } | dict.fromkeys(rejected, 1)
    failures = {e.item.id for e in notices if e.event_type == "ExportFailureNotice"}
    assert failures == {i.id for i in items if i.after_first_phase == "failed_to_export"}

    def all_sent() -> bool:
        return wanted <= set(mail_ids(system.sink))

    eventually(
        all_sent,
        timeout=60,
        interval=0.5,
        message=lambda: f"{len(wanted - set(mail_ids(system.sink)))} e-mails missing",
    )
    sent = Counter(event_id for event_id in mail_ids(system.sink) if event_id in wanted)
    assert set(sent) == wanted
    ledger = {
        str(event_id): (str(status), int(attempts))
        for event_id, status, attempts in rows(
            system.settings,
            "SELECT event_id, status, attempts FROM notifications_sent WHERE company_id = %s",
            company,
        )
    }
    assert {event_id: status for event_id, (status, _) in ledger.items()} == dict.fromkeys(
        wanted, "sent"
    )
    over = {e: n for e, n in sent.items() if n > (1 if exact else ledger[e][1])}
    assert over == {}, f"e-mails sent more often than the ledger allows: {over}"


def replay_verify(system: System, company: str) -> None:
    """`erp-pipeline replay --verify` of one company's items on this run's topics agrees with
    erp.status and the read model (exit code 0)."""
    done = cli(system.cli_env(), "replay", "--verify", "--company", company, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
