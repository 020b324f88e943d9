"""The key check: a record's key must be the contract's key of the event it holds."""

from __future__ import annotations

import json

import pytest

from consumers.dev import samples as se
from pipeline.rules.keys import QUOTED_KEY_CHARS, describe_key, key_error, key_refusal
from tests.support.processor import Harness
from topics import decode
from topics.record import Record
from topics.specs import DIRECTORY, NOTIFICATIONS, SUBMISSIONS, expected_key

RIGHT = b"acme-builders:project:prj-100"


def _submitted(key: bytes | None) -> tuple[Record, object]:
    raw = json.dumps(se.project_submitted()).encode()
    return Record("erp.submissions", 2, 7, key, raw), decode(raw, SUBMISSIONS)


def test_the_right_key_passes() -> None:
    record, event = _submitted(RIGHT)
    assert key_error(SUBMISSIONS, record, event) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("key", "quoted"),
    [
        (b"other-co:project:prj-100", "'other-co:project:prj-100'"),
        ("a\u00e7me:project:prj-100".encode(), "'a\u00e7me:project:prj-100'"),
        (RIGHT + b" ", "'acme-builders:project:prj-100 '"),
        (None, "record key null (no key)"),
        (b"acme\xff:project:prj-100", "'acme\\\\xff:project:prj-100' (not UTF-8, 21 bytes)"),
    ],
)
def test_another_key_is_refused_at_schema_naming_both_keys(key: bytes | None, quoted: str) -> None:
    record, event = _submitted(key)
    dead = key_refusal(SUBMISSIONS, record, event)  # type: ignore[arg-type]
    assert dead is not None
    assert dead.payload.stage.value == "schema"
    assert "expected 'acme-builders:project:prj-100'" in dead.payload.error
    assert quoted in dead.payload.error
    assert dead.payload.refused_event_type == "ItemSubmitted"
    assert dead.payload.source.partition == 2 and dead.payload.source.offset == 7


def test_a_long_key_is_quoted_bounded() -> None:
    record, event = _submitted(b"x" * 5000)
    error = key_error(SUBMISSIONS, record, event)  # type: ignore[arg-type]
    assert error is not None
    assert "more characters" in error and len(error) < QUOTED_KEY_CHARS + 200
    assert len(describe_key(b"\xff" * 5000)) < QUOTED_KEY_CHARS + 60


def test_each_topic_expects_its_own_key_format() -> None:
    approver = decode(json.dumps(se.approver_updated(se.APPROVER)).encode(), DIRECTORY)
    assert expected_key(DIRECTORY, approver) == "acme-builders:user:u-ana"
    settings = decode(json.dumps(se.company_settings()).encode(), DIRECTORY)
    assert expected_key(DIRECTORY, settings) == "acme-builders:settings"
    _, submitted = _submitted(RIGHT)
    assert expected_key(SUBMISSIONS, submitted) == RIGHT.decode()  # type: ignore[arg-type]
    assert expected_key(NOTIFICATIONS, submitted) == RIGHT.decode()  # type: ignore[arg-type]


async def test_the_step_refuses_a_wrong_key_leaves_the_state_alone_and_goes_on() -> None:
    harness = Harness()
    raw = se.project_submitted()
    for key in (b"other-co:project:prj-100", None, b"\xff\xfe"):
        (dead,) = await harness.send("erp.submissions", raw, key=key)
        assert dead.event_type == "EventRefused" and dead.payload.stage.value == "schema"
        assert "expected 'acme-builders:project:prj-100'" in dead.payload.error
    assert RIGHT not in harness.items
    (status,) = await harness.send("erp.submissions", raw, key=RIGHT)
    assert status.payload.status == "ready_to_export"
