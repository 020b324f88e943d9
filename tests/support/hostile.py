"""Hostile Kafka records for every input topic: hypothesis strategies and a seeded batch.

A record starts as a valid event of its topic (fresh ids, a company of the caller's choosing)
and is made hostile in its value (`hostile_values.mutated`), its key, its headers and its
broker timestamp; any of them may also stay valid, so some records are simply processed.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from consumers.dev import samples as se
from tests.support import events
from tests.support.events import raw_key
from tests.support.hostile_values import hostile_texts, mutated
from topics import MAX_EVENT_BYTES
from topics.specs import (
    DECISIONS,
    DIRECTORY,
    EXPORT_RESULTS,
    EXPORTS,
    NOTIFICATIONS,
    STATUS,
    SUBMISSIONS,
    TopicSpec,
)

#: Every topic a worker consumes: the processor's four, the exporter's, the projection's
#: (also read by the processor's summary view) and the notifier's (likewise).
INPUT_TOPICS = (DIRECTORY, SUBMISSIONS, DECISIONS, EXPORT_RESULTS, EXPORTS, STATUS, NOTIFICATIONS)
#: Broker timestamps at the edges: none, the epoch, negative, year 3000, year 10000, the max.
ODD_TIMESTAMPS = (0, 1, -1, -5, 32_503_680_000_000, 253_402_300_800_000, 2**63 - 1)
#: Header names and values beside (or instead of) the contract's headers.
HEADER_NAMES = ("event_type", "schema_version", "correlation_id", "", "\x00", "\u202e", "k\u00e9y")
#: Header names that are not UTF-8, as clients that take names as bytes can send them.
BYTE_HEADER_NAMES = (b"\xff\xfe", b"k\xe9y", b"event_type\x80")
HEADER_VALUES = (b"ItemSubmitted", b"ItemExploded", b"1", b"99", b"-1", b"\xff\xfe", b"x" * 100_000)


@dataclass(frozen=True, repr=False)
class Hostile:
    """One record to publish as it is, to an explicit partition, with one of two clients."""

    spec: TopicSpec
    partition: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str | bytes, bytes | None], ...]  # bytes names: not UTF-8
    timestamp_ms: int | None  # None: the client's clock
    client: str  # "aiokafka" or "confluent" (librdkafka)
    how: str  # what was made hostile, for failure reports
    #: Valid records to publish (keyed, not to a partition) before this one.
    before: tuple[tuple[TopicSpec, bytes, bytes], ...] = ()

    def __repr__(self) -> str:
        return f"Hostile({self.describe()})"

    def describe(self) -> str:
        """A short account of the record, enough to rebuild it by hand."""
        return (
            f"{self.spec.name}/{self.partition} via {self.client}: {self.how};"
            f" key={self.key[:80] if self.key else self.key!r}"
            f" value={self.value[:160] if self.value else self.value!r}"
            f" headers={[(k, (v or b'')[:20]) for k, v in self.headers]}"
            f" timestamp={self.timestamp_ms}"
        )


def _item(event: dict[str, Any], item_id: str) -> dict[str, Any]:
    event["item"] = {**event["item"], "id": item_id}
    if isinstance(event["payload"].get("item"), dict):  # notices repeat the item
        event["payload"]["item"] = {**event["payload"]["item"], "id": item_id}
    return event


def _version(decision: dict[str, Any]) -> dict[str, Any]:
    """A decision about version 1: held, should it be read before its submission."""
    decision["payload"]["submission_version"] = 1
    return decision


def _examples(*names: str) -> list[Callable[[str, str], dict[str, Any]]]:
    return [lambda i, u, n=n: _item(events.valid_examples()[n], i) for n in names]


#: topic name → builders of a valid event of that topic: (item id, a fresh uuid) → event.
TEMPLATES: dict[str, list[Callable[[str, str], dict[str, Any]]]] = {
    DIRECTORY.name: [
        lambda i, u: se.approver_updated({"user_id": i, "email": f"{i}@x.example", "name": i}),
        lambda i, u: se.company_settings(daily_summary_hour=0),
    ],
    SUBMISSIONS.name: [
        lambda i, u: se.project_submitted(i),
        lambda i, u: se.commitment_submitted(i),
        lambda i, u: se.cco_submitted(i),
        lambda i, u: se.pcco_submitted(i),
        lambda i, u: se.retrieved("project", i),
    ],
    DECISIONS.name: [  # about items submitted first (`SUBMITTED_FIRST`), but for the retry
        lambda i, u: _version(
            se.accepted("project", i, erp_job_id=f"JH{u[:6]}", job_template="COMM")
        ),
        lambda i, u: _version(se.rejected("commitment", i, "no")),
        lambda i, u: se.envelope("ExportRetryRequested", item=("project", i), actor=se.APPROVER),
    ],
    EXPORTS.name: [
        lambda i, u: events.project_export(i, f"JH{u[:6]}", export_id=u),
        lambda i, u: events.commitment_export(i, "prj-100", export_id=u, number=u[:10]),
    ],
    EXPORT_RESULTS.name: _examples("ItemExported", "ExportAttemptFailed"),
    STATUS.name: _examples("ItemStatusChanged"),
    NOTIFICATIONS.name: [
        lambda i, u: _item(events.rejection_notice(), i),
        lambda i, u: _item(events.export_failure_notice(), i),
        lambda i, u: events.daily_summary(),
    ],
}

#: A decision's item is submitted first, so that what is hostile in the decision gets judged
#: (and, accepted, exported) rather than the decision refused for want of an item.
SUBMITTED_FIRST: dict[str, Callable[[str], dict[str, Any]]] = {
    "ItemAccepted": se.project_submitted,
    "ItemRejected": lambda i: se.commitment_submitted(i),
}


@st.composite
def valid_events(draw: Any, spec: TopicSpec, company: str) -> dict[str, Any]:
    """A valid event of `spec`'s topic for `company`, with ids and time of its own."""
    uid = str(draw(st.uuids()))
    event = draw(st.sampled_from(TEMPLATES[spec.name]))(f"fzh-{uid[:13]}", uid)
    return {
        **event,
        "event_id": uid,
        "company_id": company,
        "occurred_at": "2026-11-21T10:00:00Z",  # a fixed time: the same seed, the same bytes
    }


@st.composite
def record_keys(draw: Any, contract: bytes) -> bytes | None:
    """The contract's key (most often) or an odd one: none, empty, not UTF-8, odd characters,
    70 KB or 1 MiB, another company's, without separators."""
    kind = draw(st.sampled_from(("contract", "contract", "contract", "none", "odd", "bytes")))
    if kind == "contract":
        return contract
    if kind == "none":
        return None
    if kind == "bytes":
        return bytes(draw(st.binary(max_size=40)))
    return bytes(
        draw(
            st.sampled_from(
                (
                    b"",
                    b"\xff\xfe" + contract,
                    contract + b"\x00",
                    contract * 2_000,
                    b"k" * MAX_EVENT_BYTES,
                    b"elsewhere" + contract[contract.index(b":") :],  # another company's
                    contract.replace(b":", b""),
                    contract.upper(),
                    contract + b" ",
                    draw(hostile_texts(contract.decode())).encode("utf-8", "surrogatepass"),
                )
            )
        )
    )


@st.composite
def record_headers(
    draw: Any, event_type: str, byte_names: bool
) -> tuple[tuple[str | bytes, bytes | None], ...]:
    """No headers, the contract's, or odd ones: repeated, contradicting, not UTF-8, huge, null.

    With `byte_names`, names may be bytes that are not UTF-8 (sent as given by
    `tests.support.kafka.send_with_byte_header_names`, as clients that take names as bytes can).
    """
    found: list[tuple[str | bytes, bytes | None]] = []
    if draw(st.booleans()):
        found += [("event_type", event_type.encode()), ("schema_version", b"1")]
    names: list[Any] = [st.sampled_from(HEADER_NAMES), st.text(max_size=8)]
    if byte_names:
        names.append(st.sampled_from(BYTE_HEADER_NAMES))
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.one_of(*names))
        value = draw(st.one_of(st.none(), st.sampled_from(HEADER_VALUES), st.binary(max_size=16)))
        found.append((name, value))
    return tuple(found)


@st.composite
def hostile_records(draw: Any, spec: TopicSpec, company: str) -> Hostile:
    """A hostile record for `spec`'s topic, built from a valid event of `company`."""
    event = draw(valid_events(spec, company))
    before = ()
    if event["event_type"] in SUBMITTED_FIRST:
        submitted = SUBMITTED_FIRST[event["event_type"]](event["item"]["id"])
        submitted |= {
            "event_id": str(uuid.UUID(int=uuid.UUID(event["event_id"]).int ^ 1)),
            "company_id": company,
            "occurred_at": event["occurred_at"],
        }
        before = ((SUBMISSIONS, raw_key(submitted), json.dumps(submitted).encode()),)
    value, how = draw(mutated(event))
    key = draw(record_keys(raw_key(event)))
    # aiokafka refuses a record with neither key nor value; librdkafka sends it
    client = (
        "confluent"
        if key is None and value is None
        else draw(st.sampled_from(("aiokafka", "confluent")))
    )
    return Hostile(
        spec=spec,
        # spread evenly: drawn integers would favour partition 0
        partition=uuid.UUID(event["event_id"]).int % spec.partitions,
        key=key,
        value=value,
        headers=draw(record_headers(event["event_type"], byte_names=client == "aiokafka")),
        timestamp_ms=draw(st.one_of(st.none(), st.sampled_from(ODD_TIMESTAMPS))),
        client=client,
        how=f"{event['event_type']}: {how}",
        before=before,
    )


def draw_batch(count: int, company: str, seed_value: int) -> list[Hostile]:
    """`count` distinct hostile records, as many for each of `INPUT_TOPICS` as can be; the
    same seed, the same batch.

    Hypothesis generates them as examples of one property, one record per input topic in
    each, with no shrinking: the system they are published to runs once, after they are
    drawn. Its generator also replays parts of earlier examples, which makes repeats: those
    are skipped, and it is given examples enough to make up for them.
    """
    quota = -(-count // len(INPUT_TOPICS))
    found: dict[str, dict[tuple[bytes | None, bytes | None], Hostile]] = {
        spec.name: {} for spec in INPUT_TOPICS
    }
    every_topic = st.tuples(*(hostile_records(spec, company) for spec in INPUT_TOPICS))

    @seed(seed_value)
    @settings(
        max_examples=6 * quota,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(every_topic)
    def collect(records: tuple[Hostile, ...]) -> None:
        for record in records:
            distinct = found[record.spec.name]
            if len(distinct) < quota:
                distinct.setdefault((record.key, record.value), record)

    collect()
    rounds = itertools.zip_longest(*(list(distinct.values()) for distinct in found.values()))
    return [record for round_ in rounds for record in round_ if record is not None][:count]
