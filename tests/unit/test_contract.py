"""The event models and the codec: every event type, valid and invalid, and the error types."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.contract_cases import (
    ACCEPTED,
    OCTETS_GROW_ONCE_LOWERCASED,
    REFUSED,
    Case,
    case_id,
    value_at,
    with_value,
)
from tests.support.events import valid_examples
from topics import (
    ALL_TOPICS,
    EVENT_MODELS,
    MAX_EVENT_BYTES,
    DecodeError,
    SchemaError,
    decode,
    encode,
    key_of,
)
from topics.specs import DECISIONS, SUBMISSIONS, spec_for

EXAMPLES = valid_examples()


def test_every_event_type_has_an_example_and_a_topic() -> None:
    assert set(EXAMPLES) == set(EVENT_MODELS)
    on_topics = {t for spec in ALL_TOPICS for t in spec.event_types}
    assert on_topics == set(EVENT_MODELS)


@pytest.mark.parametrize("event_type", sorted(EVENT_MODELS))
def test_valid_example_decodes_on_its_topic_and_round_trips(event_type: str) -> None:
    spec = next(s for s in ALL_TOPICS if event_type in s.event_types)
    event = decode(json.dumps(EXAMPLES[event_type]).encode(), spec)
    assert type(event).__name__ == event_type
    again = decode(encode(event), spec)
    assert again == event
    assert encode(again) == encode(event)


def _required_payload_fields() -> list[tuple[str, str]]:
    """(event type, a required payload field) for every type whose payload has one."""
    pairs = []
    for event_type, example in sorted(EXAMPLES.items()):
        model = type(decode(json.dumps(example)).payload)
        required = [name for name, info in model.model_fields.items() if info.is_required()]
        pairs += [(event_type, field) for field in required[:2]]
    return pairs


REQUIRED = _required_payload_fields()


def test_most_event_types_have_required_payload_fields() -> None:
    without = set(EVENT_MODELS) - {event_type for event_type, _ in REQUIRED}
    assert without == {"CompanySettingsUpdated", "ItemRetrieved", "ExportRetryRequested"}


@pytest.mark.parametrize(("event_type", "field"), REQUIRED)
def test_missing_payload_field_is_a_schema_error_naming_it(event_type: str, field: str) -> None:
    event = copy.deepcopy(EXAMPLES[event_type])
    del event["payload"][field]
    with pytest.raises(SchemaError, match=rf"payload\.{field}: Field required") as info:
        decode(json.dumps(event))
    assert info.value.event_id == event["event_id"]


@pytest.mark.parametrize("event_type", sorted(EVENT_MODELS))
def test_extra_field_is_refused_because_the_contract_is_closed(event_type: str) -> None:
    event = copy.deepcopy(EXAMPLES[event_type])
    event["payload"]["unexpected"] = 1
    with pytest.raises(SchemaError, match=r"payload\.unexpected: Extra inputs are not permitted"):
        decode(json.dumps(event))


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(event: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        target = event
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[leaf] = value

    return mutate


INVALID = [
    ("ItemSubmitted", _set("company_id", "acme builders"), "company_id"),
    ("ItemSubmitted", _set("company_id", "x" * 65), "company_id"),
    ("ItemSubmitted", _set("company_id", ""), "company_id"),
    ("ItemSubmitted", _set("payload.amount", 250000.0), "payload.amount"),
    ("ItemSubmitted", _set("payload.amount", "12,50"), "payload.amount"),
    (
        "ItemSubmitted",
        _set("payload.snapshot.line_items.0.amount", 1),
        "payload.snapshot.line_items.0.amount",
    ),
    (
        "ItemSubmitted",
        _set("payload.snapshot.commitment_type", "lease"),
        "payload.snapshot.commitment_type",
    ),
    ("ItemSubmitted", _set("occurred_at", "2026-11-21T10:00:00"), "occurred_at"),
    ("ItemSubmitted", _set("occurred_at", "yesterday"), "occurred_at"),
    ("ItemSubmitted", _set("event_id", "not-a-uuid"), "event_id"),
    ("ItemSubmitted", _set("schema_version", 2), "schema_version"),
    ("ItemSubmitted", _set("item.type", "spaceship"), "item.type"),
    ("ItemSubmitted", _set("actor.email", "not an email"), "actor.email"),
    ("ItemRejected", _set("payload.reason", "   "), "payload.reason"),
    ("ItemRejected", _set("payload.reason", "x" * 2001), "payload.reason"),
    ("ItemAccepted", _set("payload", {"erp_job_id": "RMO100"}), "payload.job_template"),
    (
        "ItemAccepted",
        _set("item", {"type": "commitment_change_order", "id": "c1"}),
        "payload.change_order_date",
    ),
    ("CompanySettingsUpdated", _set("payload.timezone", "Mars/Olympus"), "payload.timezone"),
    (
        "CompanySettingsUpdated",
        _set("payload.daily_summary_hour", 24),
        "payload.daily_summary_hour",
    ),
    (
        "ApproverUpdated",
        _set("payload.erp_tool_permission", "superuser"),
        "payload.erp_tool_permission",
    ),
]


@pytest.mark.parametrize(("event_type", "mutate", "field"), INVALID)
def test_field_level_rules(
    event_type: str, mutate: Callable[[dict[str, Any]], None], field: str
) -> None:
    event = copy.deepcopy(EXAMPLES[event_type])
    mutate(event)
    with pytest.raises(SchemaError) as info:
        decode(json.dumps(event))
    assert field in info.value.reason


def test_money_keeps_its_exact_string() -> None:
    event = decode(json.dumps(EXAMPLES["ItemSubmitted"]))
    assert event.payload.amount == "250000.00"
    assert '"amount":"250000.00"' in encode(event).decode()


def test_project_accept_fields_are_typed_by_item_type() -> None:
    event = decode(json.dumps(EXAMPLES["ItemAccepted"]))
    assert type(event.payload).__name__ == "ProjectAcceptFields"
    assert event.payload.erp_job_id == "RMO100"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "expected a JSON object, got an array"),
        (b"null", "expected a JSON object, got null"),
        (b'"text"', "expected a JSON object, got a string"),
        (b"\xef\xbb\xbf{}", "byte-order mark"),
        (b" " * (MAX_EVENT_BYTES + 1), "over the"),
    ],
)
def test_undecodable_bytes_raise_decode_error(raw: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode(raw)


def test_unknown_event_type_and_wrong_topic_are_schema_errors() -> None:
    unknown = {**EXAMPLES["ItemRejected"], "event_type": "ItemTeleported"}
    with pytest.raises(SchemaError, match="unknown event type"):
        decode(json.dumps(unknown), DECISIONS)
    with pytest.raises(SchemaError, match=r"does not belong on erp\.submissions"):
        decode(json.dumps(EXAMPLES["ItemRejected"]), SUBMISSIONS)


def test_deeply_nested_json_is_refused_not_crashing() -> None:
    with pytest.raises((DecodeError, SchemaError)):
        decode(b"[" * 100_000 + b"]" * 100_000)


def test_models_are_frozen() -> None:
    event = decode(json.dumps(EXAMPLES["ItemRejected"]))
    with pytest.raises(Exception, match="frozen"):
        event.company_id = "other"  # type: ignore[misc]


def test_keys_follow_the_contract() -> None:
    assert (
        key_of(decode(json.dumps(EXAMPLES["ItemSubmitted"]))) == "acme-builders:commitment:sc-200"
    )
    assert key_of(decode(json.dumps(EXAMPLES["ApproverUpdated"]))) == "acme-builders:user:u-ana"
    assert (
        key_of(decode(json.dumps(EXAMPLES["CompanySettingsUpdated"]))) == "acme-builders:settings"
    )


def test_topic_prefix_and_specs() -> None:
    assert spec_for("erp.decisions").full_name("staging.") == "staging.erp.decisions"
    assert spec_for("staging.erp.decisions", "staging.") is DECISIONS
    assert spec_for("erp.status").configs()["cleanup.policy"] == "compact,delete"
    assert spec_for("erp.exports").retention_ms == 30 * 24 * 3600 * 1000
    with pytest.raises(KeyError):
        spec_for("erp.nope")


# --- the rules tightened in #15: every shape refused, and its neighbours still taken -----------


@pytest.mark.parametrize("case", REFUSED, ids=case_id)
def test_tightened_rule_is_a_schema_error_naming_the_field(case: Case) -> None:
    event = with_value(EXAMPLES[case.event_type], case.path, case.value)
    with pytest.raises(SchemaError) as info:
        decode(json.dumps(event))
    assert case.path in info.value.reason


@pytest.mark.parametrize("case", ACCEPTED, ids=case_id)
def test_values_next_to_the_rules_are_taken_as_they_are(case: Case) -> None:
    event = decode(json.dumps(with_value(EXAMPLES[case.event_type], case.path, case.value)))
    # kept as given, never normalized: the event's bytes (and so a replay) stay the same
    assert value_at(json.loads(encode(event)), case.path) == case.value


def test_an_e_mail_address_is_kept_as_given_not_normalized() -> None:
    event = decode(
        json.dumps(with_value(EXAMPLES["ApproverUpdated"], "payload.email", "A@B.example"))
    )
    assert event.payload.email == "A@B.example"


def test_the_lowercase_form_of_an_address_is_checked_too() -> None:
    event = with_value(EXAMPLES["ApproverUpdated"], "payload.email", OCTETS_GROW_ONCE_LOWERCASED)
    assert len(OCTETS_GROW_ONCE_LOWERCASED.encode()) == 254
    with pytest.raises(SchemaError, match="once lowercased"):
        decode(json.dumps(event))


@pytest.mark.parametrize(
    "when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+23:59"]
)
def test_a_timestamp_that_cannot_be_converted_to_utc_is_a_schema_error(when: str) -> None:
    event = with_value(EXAMPLES["ItemSubmitted"], "occurred_at", when)
    with pytest.raises(SchemaError, match=r"occurred_at: .*1900-01-02T00:00:00Z"):
        decode(json.dumps(event))


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (b'{"event_type": "ItemRejected", "event_type": "ItemAccepted"}', "event_type"),
        (b'{"payload": {"amount": "1.00", "amount": "1000000.00"}}', "amount"),
        (b'{"a": {"b\\u0000": 1, "b\\u0000": 2}}', "b\\u0000"),
    ],
)
def test_a_key_given_twice_in_an_object_is_a_decode_error_naming_it(raw: bytes, key: str) -> None:
    with pytest.raises(DecodeError, match=re.escape(f'duplicate key "{key}"')):
        decode(raw)


def test_a_duplicate_key_anywhere_in_a_valid_event_is_refused() -> None:
    text = json.dumps(EXAMPLES["ItemRejected"])
    doubled = text.replace('"reason": ', '"reason": "Fine", "reason": ', 1)
    assert json.loads(doubled)["payload"]["reason"] == EXAMPLES["ItemRejected"]["payload"]["reason"]
    with pytest.raises(DecodeError, match='duplicate key "reason"'):
        decode(doubled, DECISIONS)
