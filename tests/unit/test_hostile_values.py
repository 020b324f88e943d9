"""Values that used to raise before the processor's safety net, or while it built the dead letter.

Each one made the agent crash and get the same record again and again; now each becomes one
decodable dead letter and the next record is handled.
"""

from __future__ import annotations

import json

import pytest

from consumers.dev import samples as se
from pipeline.rules.refusals import UNKNOWN_COMPANY, refusal, refusal_for_contract_error
from tests.support.processor import Harness
from topics import ContractError, DecodeError, SchemaError, decode, encode
from topics.record import Record
from topics.specs import DEAD_LETTERS, SUBMISSIONS

YEAR_10000_MS = 253_402_300_800_000


def _roundtrip(dead: object) -> object:
    """A dead letter must be decodable by the product itself."""
    return decode(encode(dead), DEAD_LETTERS)  # type: ignore[arg-type]


def test_an_integer_literal_past_python_s_digit_limit_is_a_decode_error() -> None:
    raw = b'{"event_type": "ItemSubmitted", "n": ' + b"9" * 5000 + b"}"
    with pytest.raises(DecodeError, match="not JSON"):
        decode(raw, SUBMISSIONS)


def test_money_takes_ascii_digits_only() -> None:
    raw = se.project_submitted()
    raw["payload"]["amount"] = "\u0661\u0662\u0663.00"  # Arabic-Indic 123.00
    with pytest.raises(SchemaError, match=r"payload\.amount"):
        decode(json.dumps(raw), SUBMISSIONS)


def test_an_event_id_that_cannot_be_encoded_is_not_quoted_in_the_dead_letter() -> None:
    raw = json.dumps({**se.project_submitted(), "event_id": "\ud800"})
    record = Record(
        "erp.submissions", 0, 1, b"acme-builders:project:p", raw.encode("utf-8", "surrogatepass")
    )
    with pytest.raises(ContractError) as refused:
        decode(record.value or b"", SUBMISSIONS)
    dead = refusal_for_contract_error(record, refused.value)
    assert dead.payload.refused_event_id is None
    assert _roundtrip(dead) == dead


def test_a_key_whose_company_part_is_not_ascii_files_the_dead_letter_under_unknown() -> None:
    key = "acm\u00e9:project:p".encode()
    dead = refusal(Record("erp.submissions", 0, 1, key, b"{"), "decode", "not JSON")
    assert dead.company_id == UNKNOWN_COMPANY
    assert dead.payload.source.key == "acm\u00e9:project:p"
    assert _roundtrip(dead) == dead


def test_a_broker_timestamp_past_year_9999_falls_back_to_now() -> None:
    record = Record("erp.submissions", 0, 1, None, b"{", timestamp_ms=YEAR_10000_MS)
    dead = refusal(record, "decode", "not JSON")
    assert 2000 < dead.occurred_at.year < 9999
    assert _roundtrip(dead) == dead


def test_an_error_text_with_lone_surrogates_stays_encodable() -> None:
    dead = refusal(Record("erp.submissions", 0, 1, None, b"{"), "schema", "bad \ud800 value")
    assert _roundtrip(dead) == dead


async def test_the_processor_dead_letters_each_hostile_record_and_handles_the_next() -> None:
    harness = Harness()
    step = harness.processor.step
    hostile = [
        Record("erp.submissions", 0, 1, "acm\u00e9:project:p".encode(), b"{"),
        Record("erp.submissions", 0, 2, b"k", b'{"n": ' + b"9" * 5000 + b"}"),
        Record("erp.submissions", 0, 3, None, b"{", timestamp_ms=YEAR_10000_MS),
        Record(
            "erp.submissions",
            0,
            4,
            b"k",
            json.dumps({**se.project_submitted(), "event_id": "\ud800"}).encode(),
        ),
    ]
    for record in hostile:
        await step.handle(record)
    assert [e.event_type for e in harness.published] == ["EventRefused"] * len(hostile)
    for dead in harness.published:
        assert _roundtrip(dead) == dead
    next_key = b"acme-builders:project:prj-100"
    await step.handle(
        Record("erp.submissions", 0, 5, next_key, json.dumps(se.project_submitted()).encode())
    )
    assert harness.published[-1].payload.status == "ready_to_export"


YEAR_1850_MS = -3_786_825_600_000


def test_a_broker_timestamp_before_1900_falls_back_to_now() -> None:
    record = Record("erp.submissions", 0, 1, None, b"{", timestamp_ms=YEAR_1850_MS)
    dead = refusal(record, "decode", "not JSON")
    assert 2000 < dead.occurred_at.year < 9999
    assert _roundtrip(dead) == dead


@pytest.mark.parametrize("event_id", ["", "id\x00", "id\nid"])
def test_an_event_id_that_is_empty_or_holds_a_control_is_not_quoted(event_id: str) -> None:
    raw = json.dumps({**se.project_submitted(), "event_id": event_id}).encode()
    record = Record("erp.submissions", 0, 1, b"acme-builders:project:p", raw)
    with pytest.raises(ContractError) as refused:
        decode(raw, SUBMISSIONS)
    dead = refusal_for_contract_error(record, refused.value)
    assert dead.payload.refused_event_id is None
    assert _roundtrip(dead) == dead


def test_an_error_text_with_control_characters_stays_a_valid_dead_letter() -> None:
    dead = refusal(Record("erp.submissions", 0, 1, None, b"{"), "schema", "bad\x00\x1b value\n")
    assert dead.payload.error == "bad\ufffd\ufffd value\n"
    assert _roundtrip(dead) == dead


def _submitted(**changes: object) -> bytes:
    return json.dumps({**se.project_submitted(), **changes}).encode()


async def test_the_processor_refuses_values_the_contract_now_refuses_and_handles_the_next() -> None:
    harness = Harness()
    title_with_nul = se.project_submitted()
    title_with_nul["payload"]["title"] = "Riverside\u0000Medical"
    refused = {
        "decode": _submitted().replace(b'"company_id": ', b'"company_id": "x", "company_id": ', 1),
        "schema": json.dumps(title_with_nul).encode(),
        "overflow": _submitted(occurred_at="0001-01-01T00:00:00+01:00"),
        "instant": _submitted(occurred_at="9999-12-31T23:59:59-01:00"),
    }
    for offset, raw in enumerate(refused.values(), start=1):
        await harness.processor.step.handle(Record("erp.submissions", 0, offset, b"k", raw))
    stages = [(e.event_type, e.payload.stage.value) for e in harness.published]
    assert stages == [
        ("EventRefused", "decode"),
        ("EventRefused", "schema"),
        ("EventRefused", "schema"),
        ("EventRefused", "schema"),
    ]
    assert 'duplicate key "company_id"' in harness.published[0].payload.error
    assert "payload.title" in harness.published[1].payload.error
    assert all("occurred_at" in e.payload.error for e in harness.published[2:])
    key = b"acme-builders:project:prj-100"
    await harness.processor.step.handle(Record("erp.submissions", 0, 9, key, _submitted()))
    assert harness.published[-1].payload.status == "ready_to_export"


def test_a_tombstone_is_a_decode_error() -> None:
    # `erp-pipeline tail` stopped on a record with no value (TypeError in the codec)
    with pytest.raises(DecodeError, match="tombstone"):
        decode(None, SUBMISSIONS)
