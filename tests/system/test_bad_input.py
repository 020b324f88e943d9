"""Hostile input mixed into normal traffic: refused with the right stage, or processed once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import TopicPartition

from consumers.dev import samples as se
from pipeline.kafka import make_consumer, read_all, stop_consumer
from tests.support import system_invariants as invariants
from tests.support.db import statuses
from tests.support.events import for_company
from tests.support.kafka import Raw, as_record, decoded, publish_all
from tests.support.system import POISON_ITEM, System, env_flag
from tests.support.system_scripts import Script, first_phase, prepare_company, scripted
from tests.support.waiting import eventually
from topics.specs import (
    DEAD_LETTERS,
    DECISIONS,
    DIRECTORY,
    NOTIFICATIONS,
    SUBMISSIONS,
    TopicSpec,
)

COMPANY = "sys-flood"
#: Hostile events in the run (the full-size run is 10000; the default fits ~60 s here).
EVENTS = env_flag("SYSTEM_FLOOD_EVENTS", 1500)
#: How long the flood may take to be worked off, growing with its size.
SETTLE_S = 180 + EVENTS * 0.03

pytestmark = pytest.mark.timeout(120 + 2 * SETTLE_S)
#: Normal items flowing alongside.
NORMAL = env_flag("SYSTEM_FLOOD_NORMAL_ITEMS", 60)
EVIL = "'); DROP TABLE items; -- <script>alert(document.cookie)</script>"
INJECTED = "fine\r\nBcc: evil@attacker.example\r\nSubject: pwned"

#: A hostile case: (records for case number n, the refusal stage expected or None,
#: the status the item must end in when it is processed).
Case = Callable[[int], tuple[list[Raw], str | None, tuple[str, str] | None]]


def _json(spec: TopicSpec, event: dict[str, Any]) -> Raw:
    return as_record(spec, for_company(COMPANY, event))


def _bytes(value: bytes, n: int) -> list[Raw]:
    return [(SUBMISSIONS, f"{COMPANY}:project:junk-{n}".encode(), value)]


def _submitted(n: int, **changes: Any) -> dict[str, Any]:
    event = se.project_submitted(f"prj-h{n}")
    event["payload"] = {**event["payload"], **changes.pop("payload", {})}
    return {**event, **changes}


def _without_number(n: int) -> dict[str, Any]:
    event = _submitted(n)
    del event["payload"]["number"]
    return event


CASES: list[Case] = [
    lambda n: (_bytes(b'\xff\xfe{"event_id": \x80}', n), "decode", None),
    lambda n: (_bytes(b"{not json at all", n), "decode", None),
    lambda n: ([_json(SUBMISSIONS, _submitted(n, schema_version="one"))], "schema", None),
    lambda n: ([_json(SUBMISSIONS, _submitted(n, payload={"amount": 12.5}))], "schema", None),
    lambda n: ([_json(SUBMISSIONS, _submitted(n, event_type="ItemExploded"))], "schema", None),
    lambda n: (
        [_json(SUBMISSIONS, _submitted(n, item={"type": "spaceship", "id": f"prj-h{n}"}))],
        "schema",
        None,
    ),
    lambda n: ([_json(SUBMISSIONS, _without_number(n))], "schema", None),
    lambda n: ([_json(SUBMISSIONS, _submitted(n, surprise=True))], "schema", None),
    lambda n: (
        [_json(SUBMISSIONS, _submitted(n, payload={"title": EVIL, "number": "<b>1</b>"}))],
        None,
        (f"prj-h{n}", "ready_to_export"),
    ),
    lambda n: (
        [
            _json(SUBMISSIONS, (sub := _submitted(n))),
            _json(DECISIONS, _reject(n, INJECTED)),
            _json(SUBMISSIONS, sub),  # the same event again: processed once
        ],
        None,
        (f"prj-h{n}", "rejected"),
    ),
    lambda n: (
        [_json(SUBMISSIONS, _submitted(n)), _json(DECISIONS, _accept(n, se.VIEWER))],
        "authorize",
        (f"prj-h{n}", "ready_to_export"),
    ),
    lambda n: ([_json(DECISIONS, _reject(n, "no such item", None))], "transition", None),
    lambda n: (  # under another item's key: refused, never taken in under the body's item
        [
            (
                SUBMISSIONS,
                f"{COMPANY}:project:prj-x{n}".encode(),
                _json(SUBMISSIONS, _submitted(n))[2],
            )
        ],
        "schema",
        None,
    ),
    lambda n: (
        [_json(SUBMISSIONS, _submitted(n, occurred_at="1901-01-01T00:00:00Z"))],
        None,
        (f"prj-h{n}", "ready_to_export"),
    ),
    lambda n: (
        [_json(SUBMISSIONS, _submitted(n, occurred_at="2999-12-31T23:59:59+14:00"))],
        None,
        (f"prj-h{n}", "ready_to_export"),
    ),
]
#: A few 2 MiB values: enough to prove they are refused, few enough to keep the run short.
HUGE = 3


def _reject(n: int, reason: str, version: int | None = 1) -> dict[str, Any]:
    event = se.rejected("project", f"prj-h{n}", reason)
    if version is not None:  # decisions may be read before the submission they answer
        event["payload"]["submission_version"] = version
    return event


def _accept(n: int, actor: dict[str, str]) -> dict[str, Any]:
    return se.accepted(
        "project", f"prj-h{n}", actor, erp_job_id=f"H{n}", job_template="COMM", submission_version=1
    )


def _huge(n: int) -> Raw:
    return _json(SUBMISSIONS, _submitted(n, payload={"title": "x" * (2 * 1024 * 1024)}))


def _dead_letters(system: System) -> list[Any]:
    mine = [d for d in decoded(system.settings, DEAD_LETTERS) if d.company_id in (COMPANY, "")]
    return [d for d in mine if (d.payload.source.key or "").startswith(f"{COMPANY}:")]


def test_hostile_input_is_refused_or_processed_once_and_no_worker_restarts(
    system: System,
) -> None:
    prepare_company(system, COMPANY)
    publish_all(
        system.settings, [_json(DIRECTORY, se.approver_updated(se.VIEWER, privileged=False))]
    )
    pids = system.pids()
    normal = [i for i in scripted(COMPANY, NORMAL * 5 // 3) if i.script in _PLAIN][:NORMAL]
    hostile: list[Raw] = []
    stages: Counter[str] = Counter()
    expected: dict[str, str] = {}
    for n in range(EVENTS):
        records, stage, status = CASES[n % len(CASES)](n)
        hostile.extend(records)
        if stage:
            stages[stage] += 1
        if status:
            expected[status[0]] = status[1]
    hostile.extend(_huge(EVENTS + n) for n in range(HUGE))
    stages["decode"] += HUGE
    poison_events = [
        _json(SUBMISSIONS, se.project_submitted(POISON_ITEM)),
        _json(DECISIONS, se.accepted("project", POISON_ITEM, erp_job_id="P0", job_template="COMM")),
    ]
    stages["business_rule"] += len(poison_events)
    normal_records = [r for item in normal for r in first_phase(item)]
    # interleave: the poison first, then normal and hostile records alternating
    mixed = poison_events + [r for pair in _zip_longest(normal_records, hostile) for r in pair]
    started = time.monotonic()
    publish_all(system.settings, mixed)

    want = {i.id: i.script.final for i in normal} | expected
    eventually(
        lambda: all(statuses(system.settings, COMPANY).get(k) == v for k, v in want.items()),
        timeout=SETTLE_S,
        interval=0.5,
        message=lambda: _behind(system, want),
    )
    eventually(
        lambda: len(_dead_letters(system)) >= sum(stages.values()),
        timeout=120,
        interval=0.5,
        message=lambda: f"{len(_dead_letters(system))}/{sum(stages.values())} dead letters",
    )
    print(
        f"flood: {EVENTS} hostile + {HUGE} huge events, {len(normal)} items,"
        f" {time.monotonic() - started:.0f}s"
    )

    dead = _dead_letters(system)
    assert Counter(d.payload.stage.value for d in dead) == stages
    assert {d.payload.refused_event_id for d in dead if d.payload.stage.value == "business_rule"}
    assert POISON_ITEM not in statuses(system.settings, COMPANY)
    assert statuses(system.settings, COMPANY) == want | {"prj-100": "synced"}
    assert system.pids() == pids and system.exited() == {}, "a worker restarted or exited"
    rejected = frozenset(k for k, v in expected.items() if v == "rejected")
    invariants.check_mail(system, normal, exact=True, rejected=rejected)
    _republish_notifications(system)
    invariants.check_mail(system, normal, exact=True, rejected=rejected)
    assert not any("attacker" in r for m in system.sink.messages() for r in m.rcpt_tos)


def _behind(system: System, want: dict[str, str]) -> str:
    now = statuses(system.settings, COMPANY)
    off = Counter(
        (k.split("-")[0] + "-" + k.split("-")[1][:1], now.get(k), v)
        for k, v in want.items()
        if now.get(k) != v
    )
    return f"(item, status now, status wanted): {dict(off)}"


_PLAIN = (Script.ACCEPT, Script.REJECT, Script.RETRIEVE)


def _zip_longest(a: list[Raw], b: list[Raw]) -> list[list[Raw]]:
    step = max(1, len(b) // max(1, len(a)))
    out = [[r] for r in a]
    for index, record in enumerate(b):
        out[min(index // step, len(out) - 1)].append(record)
    return out


def _republish_notifications(system: System) -> None:
    """Every notification of the company a second time, byte for byte: each must mail once."""
    records = asyncio.run(read_all(system.settings, NOTIFICATIONS))
    again = [
        (NOTIFICATIONS, r.key, r.value)
        for r in records
        if r.key is not None and r.key.startswith(f"{COMPANY}:".encode())
    ]
    publish_all(system.settings, again)
    eventually(
        lambda: _consumed(system),
        timeout=60,
        interval=0.5,
        message="the notifier consumed the copies",
    )


def _consumed(system: System) -> bool:
    """Whether the notifiers' group has committed every notification on the topic."""

    async def go() -> bool:
        consumer = make_consumer(
            system.settings, group_id=f"{system.settings.erp_topic_prefix}erp-notifier"
        )
        await consumer.start()
        try:
            name = system.settings.topic(NOTIFICATIONS.name)
            parts = [TopicPartition(name, p) for p in range(NOTIFICATIONS.partitions)]
            ends = await consumer.end_offsets(parts)
            committed = [await consumer.committed(tp) or 0 for tp in parts]
            return all(done >= ends[tp] for done, tp in zip(committed, parts, strict=True))
        finally:
            await stop_consumer(consumer)

    return bool(asyncio.run(go()))
