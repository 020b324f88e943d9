"""Sizes bounded by construction: the cutting helpers, and dead letters of values near 1 MiB.

A dead letter quotes the record it refuses: its value (escaped in JSON, or base64) and its
key. Each one here used to make a dead letter bigger than the record it copied, which the
product could not decode (and Kafka, by default, would not take).
"""

from __future__ import annotations

import base64
import json

import pytest

from pipeline.rules.refusals import refusal, refusal_for_contract_error
from tests.support.processor import Harness
from topics import ContractError, decode, encode, key_of, record_size
from topics.events import EventRefused
from topics.limits import (
    KAFKA_MAX_REQUEST_BYTES,
    MAX_EVENT_BYTES,
    MAX_RECORD_BYTES,
    MAX_SOURCE_KEY_BYTES,
    cut_utf8,
    fit_json_text,
    json_text_bytes,
    listing,
    truncate,
)
from topics.record import Record
from topics.specs import DEAD_LETTERS, SUBMISSIONS

KEY = b"acme-builders:project:p1"


def _value_of(size: int, character: str) -> bytes:
    """A JSON object of at most `size` bytes, padded with `character` (valid UTF-8)."""
    room = size - len(b'{"pad": ""}')
    return b'{"pad": "' + (character * (room // len(character.encode()))).encode() + b'"}'


def _refused(value: bytes, key: bytes | None = KEY) -> EventRefused:
    record = Record("erp.submissions", 2, 17, key, value, timestamp_ms=1_795_000_000_000)
    try:
        decode(value, SUBMISSIONS)
    except ContractError as exc:
        return refusal_for_contract_error(record, exc)
    raise AssertionError("the value was meant to be refused")


def _fits(dead: EventRefused) -> None:
    """Readable by the product itself and within Kafka's default limits."""
    value = encode(dead)
    assert len(value) <= MAX_EVENT_BYTES
    assert decode(value, DEAD_LETTERS) == dead
    assert record_size(dead) <= MAX_RECORD_BYTES < KAFKA_MAX_REQUEST_BYTES


# --- the helpers -----------------------------------------------------------------------------


def test_truncate_keeps_the_start_and_says_how_much_was_cut() -> None:
    assert truncate("short", 10) == "short"
    cut = truncate("x" * 5000, 2000)
    assert len(cut) == 2000
    kept = cut.index("…")
    assert cut == "x" * kept + f"… ({5000 - kept} more characters)"


def test_listing_shows_what_fits_and_counts_the_rest() -> None:
    assert listing(["a", "b"], 10) == "a, b"
    ids = [f"line-{n}" for n in range(500)]
    text = listing(ids, 200, noun="line items")
    assert len(text) <= 200
    shown = text.split(", ")[:-1]
    assert shown == ids[: len(shown)]
    assert text.endswith(f"… and {500 - len(shown)} more line items")


def test_cut_utf8_never_splits_a_character() -> None:
    data = "aé€😀".encode() * 10
    for limit in range(len(data) + 1):
        cut = cut_utf8(data, limit)
        assert len(cut) <= limit
        assert len(cut) > limit - 4
        assert data.startswith(cut)
        cut.decode("utf-8")  # raises if a character was cut in two


def test_fit_json_text_counts_escapes() -> None:
    text = '"\\\n\x00é' * 1000
    fitted = fit_json_text(text, 5000)
    assert text.startswith(fitted)
    assert json_text_bytes(fitted) <= 5000 < json_text_bytes(text[: len(fitted) + 1])


# --- dead letters ------------------------------------------------------------------------------


@pytest.mark.parametrize("character", ["é", "€", "😀", '\\"', "\\u0000", "\x01"])
def test_a_refused_value_near_the_limit_makes_a_dead_letter_that_fits(character: str) -> None:
    # multi-byte characters, and text the dead letter's JSON must escape (a raw control
    # character takes six bytes there: not JSON, but UTF-8, so it is quoted as text)
    value = _value_of(MAX_EVENT_BYTES, character)
    assert len(value) <= MAX_EVENT_BYTES  # not refused for its size
    dead = _refused(value)
    assert dead.payload.stage in ("decode", "schema") and "limit" not in dead.payload.error
    _fits(dead)
    assert dead.payload.raw_truncated and dead.payload.raw_bytes == len(value)
    assert dead.payload.raw_encoding == "text"
    kept = dead.payload.raw
    assert value.startswith(kept.encode())  # cut between characters
    following = value.decode()[len(kept)]
    assert record_size(dead) + json_text_bytes(following) > MAX_RECORD_BYTES  # as much as fits


def test_undecodable_bytes_near_the_limit_are_cut_in_whole_base64_groups() -> None:
    value = b"\xff" + bytes(range(256)) * (MAX_EVENT_BYTES // 256 - 1)
    dead = _refused(value)
    assert dead.payload.stage == "decode" and dead.payload.raw_encoding == "base64"
    _fits(dead)
    kept = base64.b64decode(dead.payload.raw, validate=True)
    assert dead.payload.raw_truncated and dead.payload.raw_bytes == len(value)
    assert value.startswith(kept) and len(kept) > MAX_RECORD_BYTES // 2


def test_a_value_over_the_limit_keeps_its_start() -> None:
    value = _value_of(2 * MAX_EVENT_BYTES, "x")
    dead = _refused(value)
    assert dead.payload.stage == "decode" and "byte limit" in dead.payload.error
    _fits(dead)
    assert dead.payload.raw_bytes == len(value) and value.startswith(dead.payload.raw.encode())


def test_a_huge_key_is_quoted_by_its_start_and_never_becomes_the_dead_letter_s_key() -> None:
    key = "acme-builders:project:" + "ü" * (MAX_EVENT_BYTES // 2)
    dead = _refused(b"{", key.encode())
    _fits(dead)
    source = dead.payload.source
    assert source.key_truncated and source.key_bytes == len(key.encode())
    assert key.startswith(source.key or "")
    assert len((source.key or "").encode()) <= MAX_SOURCE_KEY_BYTES
    assert key_of(dead) == "acme-builders"  # the company part, when it is a valid company id
    assert not dead.payload.raw_truncated and dead.payload.raw == "{"


def test_a_huge_key_and_a_value_near_the_limit_together_still_fit() -> None:
    dead = _refused(_value_of(MAX_EVENT_BYTES, "€"), ("k" * MAX_EVENT_BYTES).encode())
    _fits(dead)
    assert dead.payload.source.key_truncated and dead.payload.raw_truncated


def test_a_small_value_and_key_are_kept_whole_and_unmarked() -> None:
    dead = _refused(b'{"event_type": "Nope"}')
    assert dead.payload.raw == '{"event_type": "Nope"}'
    assert not dead.payload.raw_truncated and dead.payload.raw_bytes is None
    assert not dead.payload.source.key_truncated and dead.payload.source.key == KEY.decode()


def test_a_long_error_is_cut_with_a_marker() -> None:
    dead = refusal(Record("erp.submissions", 0, 1, None, b"{"), "schema", "bad: " + "é" * 20000)
    assert len(dead.payload.error) == 8000 and dead.payload.error.endswith("more characters)")
    _fits(dead)


async def test_the_processor_publishes_dead_letters_it_can_read_back() -> None:
    harness = Harness()
    step = harness.processor.step
    hostile = [
        Record("erp.submissions", 0, 1, KEY, _value_of(MAX_EVENT_BYTES, "€")),
        Record("erp.submissions", 0, 2, b"k" * MAX_EVENT_BYTES, b"{"),
        Record("erp.submissions", 0, 3, KEY, _value_of(MAX_EVENT_BYTES, '\\"')),
    ]
    for record in hostile:
        await step.handle(record)
    assert [e.event_type for e in harness.published] == ["EventRefused"] * len(hostile)
    for dead in harness.published:
        _fits(dead)
    assert json.loads(encode(harness.published[1]))["payload"]["source"]["key_truncated"]
