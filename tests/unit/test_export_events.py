"""The events an export emits, built from a ledger outcome."""

from __future__ import annotations

import datetime as dt

from consumers.dev import samples as se
from consumers.export import events as events
from consumers.export.port import ExportOutcome
from tests.support.contract_cases import LONGER_ONCE_LOWERCASED
from tests.support.events import commitment_export, export_model
from topics.events import ExportRequested
from topics.payloads import Actor, KafkaSource

AT = dt.datetime(2026, 11, 21, 10, 0, tzinfo=dt.UTC)
SOURCE = KafkaSource(topic="erp.exports", partition=3, offset=42, key="k")


def _failure(request_attempt: int = 1) -> ExportOutcome:
    return ExportOutcome(
        export_id="exp-1",
        attempt=request_attempt,
        exported=False,
        recorded_at=AT,
        error_code="foreign_key_violation",
        error_message="vendor V9 is not present",
    )


def test_results_repeat_their_ids_so_a_re_emit_is_deduplicated() -> None:
    request = export_model(commitment_export("sc-1", "prj-1", export_id="exp-1"))
    success = ExportOutcome("exp-1", 1, True, AT, erp_reference="SC-200")
    first, again = events.item_exported(request, success), events.item_exported(request, success)
    assert first == again
    assert first.payload.erp_reference == "SC-200"
    assert first.item_key == request.item_key


def test_a_failure_is_final_and_carries_the_source_coordinates() -> None:
    request = export_model(commitment_export("sc-1", "prj-1", export_id="exp-1"))
    failed = events.export_failed(request, _failure(), SOURCE)
    attempt = events.attempt_failed(request, _failure())
    assert failed.payload.source == SOURCE
    assert not failed.payload.retryable and not attempt.payload.retryable
    assert failed.payload.error_message == "vendor V9 is not present"
    assert failed.event_id != attempt.event_id
    # a later approver retry is a new attempt, hence new events
    assert events.export_failed(request, _failure(2), SOURCE).event_id != failed.event_id


def test_dead_letter_headers_follow_kafka_connect() -> None:
    headers = dict(
        events.dead_letter_headers(_failure(), SOURCE, error_class="PermanentErpError", tries=1)
    )
    assert headers["__connect.errors.topic"] == b"erp.exports"
    assert headers["__connect.errors.partition"] == b"3"
    assert headers["__connect.errors.offset"] == b"42"
    assert headers["__connect.errors.exception.message"] == b"vendor V9 is not present"


def test_a_long_erp_error_is_cut_with_a_marker_in_every_event() -> None:
    request = export_model(commitment_export("sc-1", "prj-1", export_id="exp-1"))
    outcome = ExportOutcome("exp-1", 1, False, AT, error_code="E" * 300, error_message="Ö" * 20000)
    failed = events.export_failed(request, outcome, SOURCE)
    attempt = events.attempt_failed(request, outcome)
    (notice, *_) = events.failure_notices(request, outcome).notices
    for payload in (failed.payload, attempt.payload):
        assert len(payload.error_code) == 128 and payload.error_code.endswith("more characters)")
    for message in (failed.payload.error_message, notice.payload.error_message):
        assert len(message) == 8000 and message.endswith("more characters)")
    headers = dict(
        events.dead_letter_headers(outcome, SOURCE, error_class="PermanentErpError", tries=1)
    )
    assert headers["__connect.errors.exception.message"].decode().endswith("more characters)")


def test_the_sender_and_the_approver_are_told_once_each() -> None:
    request = export_model(commitment_export("sc-1", "prj-1", export_id="exp-1"))
    notices = events.failure_notices(request, _failure()).notices
    assert sorted(n.payload.to for n in notices) == sorted(
        [se.SENDER["email"], se.APPROVER["email"]]
    )
    assert notices[0].payload.item.number == "SC-200"


def _sent_by(request: ExportRequested, email: str) -> ExportRequested:
    """`request` as it may sit on erp.exports since before the contract refused `email`."""
    sender = Actor.model_construct(user_id="u-old", email=email, name="Old Rules")
    payload = request.payload.model_copy(update={"sent_by": sender})
    return request.model_copy(update={"payload": payload})


def test_a_recipient_that_cannot_be_addressed_is_skipped_and_the_others_are_told() -> None:
    request = _sent_by(
        export_model(commitment_export("sc-1", "prj-1", export_id="exp-1")), LONGER_ONCE_LOWERCASED
    )
    found = events.failure_notices(request, _failure())
    assert [n.payload.to for n in found.notices] == [se.APPROVER["email"]]
    assert found.unaddressable == ["sender"]


def test_one_person_with_two_spellings_of_an_address_is_told_once() -> None:
    request = _sent_by(
        export_model(commitment_export("sc-1", "prj-1", export_id="exp-1")),
        se.APPROVER["email"].upper(),
    )
    found = events.failure_notices(request, _failure())
    assert [n.payload.to for n in found.notices] == [se.APPROVER["email"]]
    assert found.unaddressable == []


def test_an_erp_error_with_control_characters_is_carried_as_text_the_contract_takes() -> None:
    request = export_model(commitment_export("sc-1", "prj-1", export_id="exp-1"))
    outcome = ExportOutcome(
        "exp-1", 1, False, AT, error_code="bad\ncode", error_message="row 1:\x00\n\tvendor"
    )
    failed = events.export_failed(request, outcome, SOURCE)
    assert failed.payload.error_code == "bad\ufffdcode"
    assert failed.payload.error_message == "row 1:\ufffd\n\tvendor"
    notice = events.failure_notices(request, outcome).notices[0]
    assert notice.payload.error_message == "row 1:\ufffd\n\tvendor"


def test_a_failure_after_a_retry_is_told_to_whoever_retried_and_the_sender() -> None:
    """Not to the approver who accepted, who did not ask for this attempt and may since have
    lost the privilege (#19)."""
    request = export_model(commitment_export("sc-1", "prj-1", export_id="exp-1", attempt=2))
    retrier = Actor(user_id="u-rob", email="rob.retrier@acme.example", name="Rob Retrier")
    retried = request.model_copy(
        update={"payload": request.payload.model_copy(update={"retried_by": retrier})}
    )
    notices = events.failure_notices(retried, _failure(2)).notices
    assert sorted(n.payload.to for n in notices) == sorted(
        [se.SENDER["email"], "rob.retrier@acme.example"]
    )
