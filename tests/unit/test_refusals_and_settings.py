"""Dead letters keep the original bytes and coordinates; settings never show secrets."""

from __future__ import annotations

import base64
import json

import pytest

from pipeline.rules.refusals import UNKNOWN_COMPANY, refusal, refusal_for_contract_error
from pipeline.settings import Settings
from tests.support.events import valid_examples
from topics import DecodeError, decode, encode
from topics.record import Record
from topics.specs import DEAD_LETTERS


def _record(value: bytes | None, key: bytes | None = b"acme-builders:project:p1") -> Record:
    return Record("erp.submissions", 2, 17, key, value, timestamp_ms=1_795_000_000_000)


def test_undecodable_bytes_are_kept_as_base64_with_coordinates() -> None:
    raw = b"\xff\x00not utf-8"
    with pytest.raises(DecodeError) as info:
        decode(raw)
    dead = refusal_for_contract_error(_record(raw), info.value)
    assert dead.payload.stage == "decode"
    assert dead.payload.raw_encoding == "base64"
    assert base64.b64decode(dead.payload.raw) == raw
    assert (
        dead.payload.source.topic,
        dead.payload.source.partition,
        dead.payload.source.offset,
    ) == (
        "erp.submissions",
        2,
        17,
    )
    assert dead.company_id == "acme-builders"
    assert decode(encode(dead), DEAD_LETTERS) == dead


def test_same_record_and_stage_give_the_same_dead_letter_id() -> None:
    first = refusal(_record(b"{}"), "schema", "x")
    again = refusal(_record(b"{}"), "schema", "x")
    other = refusal(Record("erp.submissions", 2, 18, None, b"{}"), "schema", "x")
    assert first.event_id == again.event_id != other.event_id
    assert other.company_id == UNKNOWN_COMPANY


def test_refusal_of_a_decoded_event_carries_its_identity() -> None:
    example = valid_examples()["ItemRejected"]
    event = decode(json.dumps(example))
    dead = refusal(
        _record(json.dumps(example).encode()), "authorize", "not an approver", event=event
    )
    assert dead.payload.refused_event_id == example["event_id"]
    assert dead.item == event.item and dead.occurred_at == event.occurred_at
    assert dead.payload.raw == json.dumps(example)


def test_settings_mask_secrets_and_build_sasl_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "pipeline")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "s3cret-value")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:dbpass@db/erp")
    settings = Settings()
    assert "s3cret-value" not in repr(settings) and "dbpass" not in repr(settings)
    assert "s3cret-value" not in json.dumps(settings.masked(), default=str)
    assert settings.kafka_client_kwargs()["sasl_plain_password"] == "s3cret-value"
    assert settings.require_database_url() == "postgresql://u:dbpass@db/erp"


def test_missing_broker_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    with pytest.raises(RuntimeError, match="KAFKA_BOOTSTRAP_SERVERS is not set"):
        Settings().kafka_client_kwargs()
