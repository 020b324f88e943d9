"""Fuzzing every worker through the real broker: hostile records, each followed by a normal item.

How it is built, and why:

- Hypothesis draws the hostile records first (`tests/support/hostile.py`: valid events of each
  input topic made hostile in value, key, headers and broker timestamp), from a seed, and the
  system then runs once: a live run per example would take minutes each. So there is no
  shrinking; a failure names the seed (`SYSTEM_FUZZ_SEED` draws the same records again) and
  the records involved. Each run draws new records unless the seed is given.
- Every record goes to an explicit partition of one of the seven input topics (the processor's
  four, the exporter's, the projection's and the notifier's; the processor also reads the last
  two for its daily summary), sent by aiokafka or by librdkafka, and is followed on that
  partition by a normal item: on the topics upstream writes, by the item's own record (on
  erp.directory, by the update of the approver who then accepts the item); on the topics the
  pipeline writes, by the event the pipeline derives for the item, whose key hashes to that
  partition (checked: it must land after the hostile record).
- The oracle holds whichever records are refused: the contract is tightened over time, and a
  record that happens to be valid is simply processed.
  * No worker exited or restarted (a restart would also reset the counts below).
  * Every record added to an input topic during the run (hostile, normal or derived) was
    finished once: every group having committed to the end, the workers'
    `events_consumed_total` for the topic went up by at least the number of records added,
    and by at most that number in outcomes other than `duplicate` (a record delivered again
    after a rebalance or the processor's seek back is finished again as a duplicate, by
    design). A record neither processed nor dead-lettered leaves the count short; one
    applied twice, over.
  * No record has two dead letters; each dead letter decodes and is about a record of the run.
    For the exporter, the projection, the notifier and erp.directory, a record is
    dead-lettered exactly when its outcome was `refused` or `failed`. In the processor's item
    topics a held decision is dead-lettered later, when a newer record supersedes it, so
    there every `refused` record has a dead letter but not the other way round.
  * Every normal item ends in its status (read model and erp.status), is in the ERP once if
    synced, every notification of its company is mailed exactly once, and none of its records
    is dead-lettered.
- Header names that are not UTF-8 are drawn too (sent with aiokafka's pure-Python record
  builder, which writes a name's bytes as given). Not drawn: header names with lone
  surrogates, which crash librdkafka's Python binding in the sender.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
from collections import Counter, defaultdict
from contextlib import suppress
from typing import Any

import pytest

from consumers.dev import erp_seed
from consumers.dev import samples as se
from pipeline.processor.config import ITEM_TOPICS
from tests.support import system_invariants as invariants
from tests.support import system_window as window
from tests.support.db import statuses
from tests.support.events import for_company
from tests.support.hostile import INPUT_TOPICS, draw_batch
from tests.support.kafka import as_record, publish_all
from tests.support.system import System, env_flag
from tests.support.system_fuzz import At, Pair, pairs_for, publish_pairs
from tests.support.system_scripts import prepare_company
from tests.support.waiting import eventually
from topics import ContractError, decode
from topics.specs import DEAD_LETTERS, DECISIONS, DIRECTORY, SUBMISSIONS

COMPANY = "sys-fuzz"
#: The company every hostile record is built for (apart from what its mutations change).
HOSTILE_COMPANY = "sys-fuzz-h"
#: Hostile records in the run, each followed by a normal item.
EXAMPLES = env_flag("SYSTEM_FUZZ_EXAMPLES", 280)
#: The seed of the draw; a new one each run unless given.
SEED = env_flag("SYSTEM_FUZZ_SEED", random.SystemRandom().randrange(2**32))
SETTLE_S = 120 + EXAMPLES * 0.3

pytestmark = pytest.mark.timeout(300 + 3 * SETTLE_S)
#: Input topics on which a hostile record is followed by the normal item's own record; on the
#: others, by an event the pipeline derives for the item.
UPSTREAM = {DIRECTORY.name, SUBMISSIONS.name, DECISIONS.name}


def test_hostile_records_on_every_input_are_finished_once_and_normal_items_complete(
    system: System,
) -> None:
    prepare_company(system, COMPANY)
    _prepare_hostile_company(system)
    pairs = pairs_for(draw_batch(EXAMPLES, HOSTILE_COMPANY, SEED), COMPANY)
    print(f"fuzz: {len(pairs)} hostile records, SYSTEM_FUZZ_SEED={SEED}")
    start = eventually(
        lambda: window.settled(system),
        timeout=180,
        interval=1,
        message=lambda: f"a quiet system: {window.unsettled(system)}",
    )
    pids, began = system.pids(), time.monotonic()
    asyncio.run(publish_pairs(system, pairs))

    want = {pair.item.id: pair.item.script.final for pair in pairs}
    eventually(
        lambda: (
            _running(system, pids)
            or all(statuses(system.settings, COMPANY).get(k) == v for k, v in want.items())
        ),
        timeout=SETTLE_S,
        interval=1,
        message=lambda: _items_behind(system, pairs),
    )
    end = eventually(
        window.Balance(system, start),
        timeout=SETTLE_S,
        interval=1,
        message=lambda: _unsettled(system, start),
    )
    print(f"fuzz: settled {time.monotonic() - began:.0f}s after the first record")

    _running(system, pids)
    items = [pair.item for pair in pairs]
    invariants.check_statuses(system, items)
    invariants.check_erp(system, items)
    invariants.check_mail(system, items, exact=True)
    _check_followed(system, start, end, pairs)
    _check_dead_letters(system, start, end, pairs)


def _running(system: System, pids: dict[str, int]) -> None:
    """Fail at once if a worker exited or was replaced (None otherwise, for `eventually`)."""
    exited = system.exited()
    assert system.pids() == pids and exited == {}, f"seed {SEED}: workers exited: {exited}"


def _prepare_hostile_company(system: System) -> None:
    """ERP templates and a privileged approver for the hostile records' company, known as of
    long before their own time, so that their decisions get judged."""
    erp_seed.seed(system.settings.require_erp_database_url(), HOSTILE_COMPANY)
    past = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    directory = [
        se.company_settings(daily_summary_hour=0, at=past),
        se.approver_updated(se.APPROVER, at=past),
    ]
    publish_all(
        system.settings, [as_record(DIRECTORY, for_company(HOSTILE_COMPANY, e)) for e in directory]
    )


def _check_followed(
    system: System, start: window.Snapshot, end: window.Snapshot, pairs: list[Pair]
) -> None:
    """Each hostile record has a record of its normal item after it on its partition."""
    derived: dict[tuple[str, str], list[At]] = defaultdict(list)
    for spec in INPUT_TOPICS:
        if spec.name not in UPSTREAM:
            for record in window.records_between(system, start, end, spec):
                with suppress(ContractError):  # a hostile record's key may look like ours
                    event = decode(record.value or b"", spec)
                    if event.company_id == COMPANY and event.item is not None:
                        where = (record.partition, record.offset)
                        derived[(spec.name, event.item.id)].append(where)
    late = []
    for pair in pairs:
        if pair.at is None:
            continue
        topic, (partition, offset) = pair.hostile.spec.name, pair.at
        landed = [pair.followers[topic]] if topic in UPSTREAM else derived[(topic, pair.item.id)]
        if not any(p == partition and o > offset for p, o in landed):
            late.append(f"{topic}/{partition}@{offset}: {pair.item.id} at {landed}")
    assert late == [], f"seed {SEED}: normal items not after their hostile record: {late}"


def _check_dead_letters(
    system: System, start: window.Snapshot, end: window.Snapshot, pairs: list[Pair]
) -> None:
    """At most one dead letter per record, each decodable and about a record of the run, none
    about a normal item; dead-lettered exactly when refused (see the module docstring)."""
    records = window.records_between(system, start, end, DEAD_LETTERS)
    dead, undecodable = window.dead_letters(records)
    assert undecodable == [], f"seed {SEED}: dead letters that do not decode: {_at(undecodable)}"
    sources = Counter(window.source_of(system, d) for d in dead)
    twice = {source: n for source, n in sources.items() if n > 1}
    assert twice == {}, f"seed {SEED}: records dead-lettered more than once: {twice}"
    before = [s for s in sources if s[2] < start.ends[s[0]][s[1]]]
    assert before == [], f"seed {SEED}: dead letters about records before the run: {before}"
    normal = {(t, *at) for pair in pairs for t, at in pair.followers.items()}
    keys = {pair.key.decode() for pair in pairs}
    about_normal = [
        d for d in dead if window.source_of(system, d) in normal or d.payload.source.key in keys
    ]
    assert about_normal == [], f"seed {SEED}: normal records dead-lettered: {about_normal}"

    per_topic = Counter(topic for topic, _, _ in sources)
    report, processor = {}, [0, 0]
    for spec in INPUT_TOPICS:
        marked = end.finished_since(start, spec.name, "refused", "failed")
        if spec in ITEM_TOPICS:  # a held decision is refused by a later record (see above)
            processor[0] += marked
            processor[1] += per_topic[spec.name]
        else:
            assert marked == per_topic[spec.name], (
                f"seed {SEED}: {spec.name}: {marked} records refused or failed,"
                f" {per_topic[spec.name]} dead-lettered"
            )
        mine = {(spec.name, *p.at) for p in pairs if p.hostile.spec is spec and p.at}
        stages = Counter(d.payload.stage.value for d in dead if window.source_of(system, d) in mine)
        report[spec.name] = f"{len(mine)}: {sum(stages.values())} refused {dict(stages)}"
    assert processor[0] <= processor[1], f"seed {SEED}: processor: {processor} refused, dead"
    print(f"fuzz (seed {SEED}): hostile records per topic {report}")


def _at(records: list[Any]) -> list[str]:
    return [f"p{r.partition}@{r.offset} ({len(r.value)} bytes)" for r in records[:5]]


def _items_behind(system: System, pairs: list[Pair]) -> str:
    now = statuses(system.settings, COMPANY)
    late = [
        f"{p.item.id} {now.get(p.item.id)} after {p.hostile.describe()[:300]}"
        for p in pairs
        if now.get(p.item.id) != p.item.script.final
    ]
    return f"seed {SEED}: {len(late)} normal items not done, e.g. {late[:3]}"


def _unsettled(system: System, start: window.Snapshot) -> str:
    now = window.snapshot(system)
    return (
        f"seed {SEED}: groups behind: {window.behind(system, now.ends)[:6]};"
        f" input topics whose records were not each finished once"
        f" (added, finished, finished as duplicates):"
        f" {window.unbalanced(start, now)}"
    )
