"""The processor on the real broker: the approval workflow end to end, one item per test."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from consumers.dev import samples as se
from consumers.dev.stack import Stack
from pipeline.settings import Settings
from tests.support.events import commitment_of_size, item_homed_on, raw_key
from tests.support.kafka import (
    about,
    decoded,
    publish,
    publish_on_partition,
    publish_with_header_name,
    records_where,
    wait_for_events,
)
from tests.support.processes import env_for, worker
from topics import decode
from topics.limits import KAFKA_MAX_REQUEST_BYTES, MAX_EVENT_BYTES, MAX_RECORD_BYTES
from topics.specs import (
    DEAD_LETTERS,
    DECISIONS,
    DIRECTORY,
    EXPORT_RESULTS,
    EXPORTS,
    NOTIFICATIONS,
    STATUS,
    SUBMISSIONS,
)

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def running(
    stack: Stack, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """The directory of the demo company published, and one processor running."""
    publish(
        settings,
        DIRECTORY,
        se.company_settings(),
        se.approver_updated(se.APPROVER),
        se.approver_updated(se.VIEWER, privileged=False),
    )
    data = tmp_path_factory.mktemp("processor")
    with worker("processor", env_for(stack.env(), data), data / "processor.log"):
        yield settings


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def status_of(settings: Settings, item_id: str, status: str, count: int = 1) -> Any:
    found = wait_for_events(
        settings, STATUS, lambda e: about(item_id)(e) and e.payload.status == status, count=count
    )
    return found[-1]


def test_send_enters_ready_to_export(running: Settings) -> None:
    item = new_id("prj")
    raw = se.project_submitted(item)
    publish(running, SUBMISSIONS, raw)
    status = status_of(running, item, "ready_to_export")
    assert status.payload.submission_version == 1
    assert status.payload.item_number == "RMO-100"
    assert status.correlation_id == raw["event_id"]


def test_accept_project_requests_the_export(running: Settings) -> None:
    item = new_id("prj")
    publish(running, SUBMISSIONS, se.project_submitted(item))
    status_of(running, item, "ready_to_export")
    accept = se.accepted("project", item, erp_job_id="J-77", job_template="Commercial")
    accept["correlation_id"] = "corr-accept-1"
    publish(running, DECISIONS, accept)
    (export,) = wait_for_events(running, EXPORTS, about(item))
    assert export.payload.accept_fields.erp_job_id == "J-77"
    assert export.correlation_id == "corr-accept-1"
    assert status_of(running, item, "exporting").correlation_id == "corr-accept-1"


def test_accept_cco_without_change_order_date_is_dead_lettered(running: Settings) -> None:
    item = new_id("cco")
    publish(running, SUBMISSIONS, se.cco_submitted(item))
    status_of(running, item, "ready_to_export")
    bad = se.accepted("commitment_change_order", item)
    publish(running, DECISIONS, bad)
    (dead,) = wait_for_events(
        running, DEAD_LETTERS, lambda e: e.payload.refused_event_id == bad["event_id"]
    )
    assert dead.payload.stage == "schema" and "change_order_date" in dead.payload.error


def test_reject_commitment_notifies_the_creator(running: Settings) -> None:
    item = new_id("sc")
    creator = {"user_id": "u-cal", "email": "cal.creator@acme.example", "name": "Cal"}
    raw = se.commitment_submitted(item)
    raw["payload"]["created_by"] = creator
    publish(running, SUBMISSIONS, raw)
    status_of(running, item, "ready_to_export")
    publish(running, DECISIONS, se.rejected("commitment", item, "Vendor is on hold"))
    rejected = status_of(running, item, "rejected")
    assert rejected.payload.reason == "Vendor is on hold"
    (notice,) = wait_for_events(running, NOTIFICATIONS, about(item, "RejectionNotice"))
    assert notice.payload.to == creator["email"]


def test_retrieve_then_resend_after_reject(running: Settings) -> None:
    item = new_id("prj")
    publish(running, SUBMISSIONS, se.project_submitted(item))
    status_of(running, item, "ready_to_export")
    publish(running, SUBMISSIONS, se.retrieved("project", item))
    status_of(running, item, "retrieved")
    publish(running, SUBMISSIONS, se.project_submitted(item))
    status_of(running, item, "ready_to_export", count=2)  # what the approver sees, then rejects
    publish(running, DECISIONS, se.rejected("project", item, "Wrong customer"))
    status_of(running, item, "rejected")
    publish(running, SUBMISSIONS, se.project_submitted(item))
    again = status_of(running, item, "ready_to_export", count=3)
    assert again.payload.submission_version == 3


def test_pcco_with_long_billing_code_is_send_refused(running: Settings) -> None:
    item = new_id("pcco")
    publish(running, SUBMISSIONS, se.pcco_submitted(item, billing_item_code="BI-01234567"))
    refused = status_of(running, item, "send_refused")
    assert any("billing_item_code" in reason for reason in refused.payload.reasons)


def test_unprivileged_decision_is_refused_and_item_unchanged(running: Settings) -> None:
    item = new_id("prj")
    publish(running, SUBMISSIONS, se.project_submitted(item))
    status_of(running, item, "ready_to_export")
    bad = se.accepted("project", item, actor=se.VIEWER, erp_job_id="J", job_template="T")
    publish(running, DECISIONS, bad)
    (dead,) = wait_for_events(
        running, DEAD_LETTERS, lambda e: e.payload.refused_event_id == bad["event_id"]
    )
    assert dead.payload.stage == "authorize"
    publish(running, SUBMISSIONS, se.retrieved("project", item))
    status_of(running, item, "retrieved")
    assert [e.payload.status for e in decoded(running, STATUS) if about(item)(e)] == [
        "ready_to_export",
        "retrieved",
    ]


def test_duplicate_event_is_processed_once(running: Settings) -> None:
    item = new_id("prj")
    raw = se.project_submitted(item)
    publish(running, SUBMISSIONS, raw, raw)
    publish(running, SUBMISSIONS, se.retrieved("project", item))
    status_of(running, item, "retrieved")
    assert len([e for e in decoded(running, STATUS) if about(item)(e)]) == 2
    assert not [e for e in decoded(running, DEAD_LETTERS) if about(item)(e)]


def test_bad_bytes_are_dead_lettered_and_processing_goes_on(running: Settings) -> None:
    publish(running, SUBMISSIONS, b"\xff\xfe not json", key=b"acme-builders:project:junk")
    publish(running, DECISIONS, b'{"event_type": "Nope"}', key=b"acme-builders:project:junk")
    publish(running, DIRECTORY, b"[]", key=b"acme-builders:project:junk")
    publish(
        running,
        SUBMISSIONS,
        b'{"pad": "' + b"x" * (1024 * 1024) + b'"}',
        key=b"acme-builders:project:junk",
    )
    dead = wait_for_events(
        running,
        DEAD_LETTERS,
        lambda e: e.payload.source.key == "acme-builders:project:junk",
        count=4,
    )
    assert {e.payload.stage for e in dead} == {"decode", "schema"}
    assert any("byte limit" in e.payload.error and e.payload.raw_truncated for e in dead)
    item = new_id("prj")
    publish(running, SUBMISSIONS, se.project_submitted(item))
    status_of(running, item, "ready_to_export")


def _fits_kafka(record: Any) -> Any:
    """The dead letter in `record`, which the product decodes and Kafka's defaults take."""
    assert len(record.value) <= MAX_EVENT_BYTES
    dead = decode(record.value, DEAD_LETTERS)
    headers = sum(len(name.encode()) + len(value) for name, value in record.headers)
    assert len(record.key) + len(record.value) + headers <= MAX_RECORD_BYTES
    assert MAX_RECORD_BYTES < KAFKA_MAX_REQUEST_BYTES
    return dead


def test_dead_letters_of_a_value_and_a_key_near_1_mib_fit_and_decode(running: Settings) -> None:
    key = f"acme-builders:project:{new_id('big')}"
    near = b'{"pad": "' + "€".encode() * ((MAX_EVENT_BYTES - 20) // 3) + b'"}'
    huge_key = f"{key}:{'ü' * (MAX_EVENT_BYTES // 2)}"
    item = new_id("prj")
    after = se.project_submitted(item)
    publish_on_partition(
        running,
        SUBMISSIONS,
        [
            (key.encode(), near),  # refused at stage schema, copied in a dead letter
            (huge_key.encode(), b"{"),  # refused at stage decode, its key quoted
            (raw_key(after), json.dumps(after).encode()),  # on the same partition, after them
        ],
    )
    status_of(running, item, "ready_to_export")  # so both dead letters were published before
    records = records_where(
        running, DEAD_LETTERS, lambda v: str(v["payload"]["source"]["key"]).startswith(key)
    )
    by_stage = {dead.payload.stage.value: dead for dead in map(_fits_kafka, records)}
    assert len(records) == 2 and set(by_stage) == {"schema", "decode"}
    copied, quoted = by_stage["schema"].payload, by_stage["decode"].payload
    assert copied.raw_truncated and copied.raw_bytes == len(near)
    assert near.startswith(copied.raw.encode())
    assert quoted.source.key_truncated and quoted.source.key_bytes == len(huge_key.encode())


def test_a_submission_too_big_to_keep_is_refused_and_the_next_item_completes(
    running: Settings,
) -> None:
    # on its home partition: there the rules judge its size (elsewhere it is too big to re-route)
    big, item = item_homed_on(0, "sc", "commitment"), new_id("prj")
    submitted = commitment_of_size(big, MAX_EVENT_BYTES - 1000)
    after = se.project_submitted(item)
    publish_on_partition(
        running,
        SUBMISSIONS,
        [(raw_key(e), json.dumps(e).encode()) for e in (submitted, after)],
    )
    status_of(running, item, "ready_to_export")
    (dead,) = [
        e
        for e in decoded(running, DEAD_LETTERS)
        if e.payload.refused_event_id == submitted["event_id"]
    ]
    assert dead.payload.stage == "business_rule"
    assert dead.payload.error.startswith("too big to apply: the item's state would take")
    assert not [e for e in decoded(running, STATUS) if about(big)(e)]


def test_a_nul_in_a_title_is_refused_at_schema_and_the_next_item_on_its_partition_flows(
    running: Settings,
) -> None:
    poison, normal = new_id("sc"), new_id("sc")
    bad = se.commitment_submitted(poison)
    bad["payload"]["title"] = "Concrete\u0000foundations"
    publish(running, SUBMISSIONS, bad, se.commitment_submitted(normal), partition=0)
    (dead,) = wait_for_events(
        running, DEAD_LETTERS, lambda e: e.payload.refused_event_id == bad["event_id"]
    )
    assert dead.payload.stage == "schema" and "payload.title" in dead.payload.error
    assert (dead.payload.source.partition, dead.payload.source.key) == (
        0,
        f"acme-builders:commitment:{poison}",
    )
    assert status_of(running, normal, "ready_to_export").payload.submission_version == 1
    assert not [e for e in decoded(running, STATUS) if about(poison)(e)]


def test_decision_ahead_of_its_submission_is_held(running: Settings) -> None:
    item = new_id("prj")
    accept = se.accepted("project", item, erp_job_id="J-5", job_template="T", submission_version=1)
    publish(running, DECISIONS, accept)
    publish(running, SUBMISSIONS, se.project_submitted(item))
    status_of(running, item, "exporting")
    (export,) = wait_for_events(running, EXPORTS, about(item))
    assert export.payload.submission_version == 1


def _exporting(running: Settings, item: str) -> Any:
    publish(running, SUBMISSIONS, se.project_submitted(item))
    status_of(running, item, "ready_to_export")
    publish(running, DECISIONS, se.accepted("project", item, erp_job_id="J", job_template="T"))
    return wait_for_events(running, EXPORTS, about(item))[-1]


def test_export_results_sync_fail_and_retry(running: Settings) -> None:
    done, failing = new_id("prj"), new_id("prj")
    export = _exporting(running, done)
    publish(
        running,
        EXPORT_RESULTS,
        se.envelope(
            "ItemExported",
            item=("project", done),
            actor=se.APPROVER,
            export_id=export.payload.export_id,
            erp_reference="JOB-991",
            exported_at="2026-11-21T16:00:00Z",
        ),
    )
    assert status_of(running, done, "synced").payload.erp_reference == "JOB-991"
    export = _exporting(running, failing)
    for retryable in (True, False):
        publish(
            running,
            EXPORT_RESULTS,
            se.envelope(
                "ExportAttemptFailed",
                item=("project", failing),
                actor=se.APPROVER,
                export_id=export.payload.export_id,
                attempt=1,
                retryable=retryable,
                error_code="E1",
                error_message="Job template unknown",
            ),
        )
    failed = status_of(running, failing, "failed_to_export")
    assert failed.payload.reason == "Job template unknown"
    publish(
        running,
        DECISIONS,
        se.envelope("ExportRetryRequested", item=("project", failing), actor=se.APPROVER),
    )
    retried = wait_for_events(running, EXPORTS, about(failing), count=2)[-1]
    assert retried.payload.attempt == 2
    assert retried.payload.export_id == export.payload.export_id


def test_directory_change_applies_to_the_decision_right_after_it(running: Settings) -> None:
    item = new_id("prj")
    newcomer = {"user_id": f"u-{item}", "email": f"{item}@acme.example", "name": "New Approver"}
    publish(running, SUBMISSIONS, se.project_submitted(item))
    status_of(running, item, "ready_to_export")
    publish(running, DIRECTORY, se.approver_updated(newcomer))
    publish(running, DECISIONS, se.rejected("project", item, "Duplicate project", actor=newcomer))
    assert status_of(running, item, "rejected").actor.user_id == newcomer["user_id"]
    publish(running, SUBMISSIONS, se.project_submitted(item))
    status_of(running, item, "ready_to_export", count=2)
    publish(running, DIRECTORY, se.approver_updated(newcomer, privileged=False))
    refused = se.rejected("project", item, "Again", actor=newcomer)
    publish(running, DECISIONS, refused)
    (dead,) = wait_for_events(
        running, DEAD_LETTERS, lambda e: e.payload.refused_event_id == refused["event_id"]
    )
    assert dead.payload.stage == "authorize"


def test_a_record_whose_key_is_not_its_items_is_refused_and_the_partition_goes_on(
    running: Settings,
) -> None:
    wrong, item = new_id("prj"), new_id("prj")
    right = f"acme-builders:project:{wrong}"
    keys: list[bytes | None] = [f"other-co:project:{wrong}".encode(), None, b"acme\xff\xfe:x"]
    sent = [se.project_submitted(wrong) for _ in keys]
    after = se.project_submitted(item)
    publish_on_partition(
        running,
        SUBMISSIONS,
        [
            *((key, json.dumps(e).encode()) for key, e in zip(keys, sent, strict=True)),
            (raw_key(after), json.dumps(after).encode()),  # on the same partition, after them
        ],
    )
    status_of(running, item, "ready_to_export")  # so the three were handled before it
    ids = {e["event_id"]: key for e, key in zip(sent, keys, strict=True)}
    dead = wait_for_events(
        running, DEAD_LETTERS, lambda e: e.payload.refused_event_id in ids, count=len(ids)
    )
    assert len(dead) == len(ids)
    quoted = {
        f"other-co:project:{wrong}": f"'other-co:project:{wrong}'",
        None: "null (no key)",
        "acme\ufffd\ufffd:x": "'acme\\\\xff\\\\xfe:x' (not UTF-8, 8 bytes)",
    }
    for refused in dead:
        assert refused.payload.stage.value == "schema"
        assert f"expected {right!r}" in refused.payload.error
        assert quoted[refused.payload.source.key] in refused.payload.error
    # the item's state was never made: nothing about it reached erp.status
    assert [e for e in decoded(running, STATUS) if about(wrong)(e)] == []


def test_a_directory_record_under_another_users_key_is_refused(running: Settings) -> None:
    person = {"user_id": new_id("u"), "email": "kim.k@acme.example", "name": "Kim"}
    approver = se.approver_updated(person)
    other = f"acme-builders:user:{new_id('u')}"  # nobody's: compaction may drop its record
    publish_on_partition(running, DIRECTORY, [(other.encode(), json.dumps(approver).encode())])
    (dead,) = wait_for_events(
        running, DEAD_LETTERS, lambda e: e.payload.refused_event_id == approver["event_id"]
    )
    assert dead.payload.stage.value == "schema"
    expected = f"acme-builders:user:{person['user_id']}"
    assert f"expected {expected!r}" in dead.payload.error
    assert repr(other) in dead.payload.error


def test_a_header_name_that_is_not_utf8_is_dead_lettered_and_the_processor_goes_on(
    running: Settings,
) -> None:
    """faust's consumer reads through aiokafka's fetcher, which cannot parse such a record
    unaided (`pipeline.header_names`): the item agent and the directory agent both go on."""
    poison, normal = new_id("sc"), new_id("sc")
    bad = se.commitment_submitted(poison)
    user = se.approver_updated({**se.APPROVER, "user_id": new_id("u")})
    for spec, name, event in ((SUBMISSIONS, b"\xff\xfe", bad), (DIRECTORY, b"caf\xe9", user)):
        publish_with_header_name(running, spec, name, raw_key(event), json.dumps(event).encode())
    publish(running, SUBMISSIONS, se.commitment_submitted(normal), partition=0)
    status_of(running, normal, "ready_to_export")
    for name, event in ((b"\xff\xfe", bad), (b"caf\xe9", user)):
        key = raw_key(event).decode()
        (dead,) = wait_for_events(
            running, DEAD_LETTERS, lambda e, key=key: e.payload.source.key == key
        )
        assert dead.payload.stage == "decode"
        assert dead.payload.error == f"header name {name!r} is not UTF-8"
        assert json.loads(dead.payload.raw) == event
    assert not [e for e in decoded(running, STATUS) if about(poison)(e)]
