"""Hostile records (tests/support/hostile.py) against the decoder, the dead letter and the rules.

The same strategies feed the system fuzz test (tests/system/test_fuzz.py); here they run
with no broker, in seconds.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from consumers.dev import samples as se
from pipeline.processor.config import ROUTES
from pipeline.rules.refusals import refusal_for_contract_error
from tests.support.hostile import INPUT_TOPICS, Hostile, draw_batch, hostile_records
from tests.support.processor import Harness
from topics import ContractError, TopicSpec, decode, encode
from topics.record import Record, decode_record, header_error
from topics.specs import DEAD_LETTERS, DECISIONS, EXPORT_RESULTS, SUBMISSIONS

COMPANY = "sys-fuzz-h"


def _record(hostile: Hostile, offset: int = 7) -> Record:
    """The record a worker would read: at `offset` of the hostile record's partition (header
    names that are not UTF-8 read as `pipeline.header_names` reads them)."""
    names = [
        (n.decode("utf-8", "surrogateescape") if isinstance(n, bytes) else n, v)
        for n, v in hostile.headers
    ]
    return Record(
        hostile.spec.name,
        hostile.partition,
        offset,
        hostile.key,
        hostile.value,
        hostile.timestamp_ms or 0,
        header_error(names),
    )


def test_the_same_seed_draws_the_same_distinct_records_for_every_input_topic() -> None:
    batch = draw_batch(21, COMPANY, 1234)
    assert batch == draw_batch(21, COMPANY, 1234)
    assert [r.spec.name for r in batch[:7]] == [spec.name for spec in INPUT_TOPICS]
    assert len({(r.spec.name, r.key, r.value) for r in batch}) == len(batch) == 21


def test_the_default_batch_draws_header_names_that_are_not_utf8() -> None:
    batch = draw_batch(280, COMPANY, 1234)
    names = [n for r in batch for n, _ in r.headers if isinstance(n, bytes)]
    assert names and all(_not_utf8(n) for n in names)


def _not_utf8(name: bytes) -> bool:
    try:
        name.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


@pytest.mark.parametrize("spec", INPUT_TOPICS, ids=lambda s: s.name)
def test_a_hostile_value_decodes_or_is_refused_with_a_dead_letter_that_decodes(
    spec: TopicSpec,
) -> None:
    """What the consume loop does with a record that breaks the contract, for any record."""

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(hostile_records(spec, COMPANY))
    def check(hostile: Hostile) -> None:
        record = _record(hostile)
        try:
            decode_record(record, spec)
        except ContractError as refused:
            dead = refusal_for_contract_error(record, refused)
            assert decode(encode(dead), DEAD_LETTERS) == dead

    check()


@pytest.mark.parametrize("spec", [SUBMISSIONS, DECISIONS, EXPORT_RESULTS], ids=lambda s: s.name)
async def test_the_processor_handles_every_hostile_record_and_then_a_valid_one(
    spec: TopicSpec,
) -> None:
    harness = Harness()
    batch = [r for r in draw_batch(70, COMPANY, 99) if r.spec is spec]
    for offset, hostile in enumerate(batch):
        before = len(harness.published)
        await harness.processor.step.handle(_record(hostile, offset))
        for event in harness.published[before:]:
            assert decode(encode(event), ROUTES[event.event_type]) == event

    (status,) = await harness.send("erp.submissions", se.project_submitted("prj-after-them"))
    assert status.payload.status == "ready_to_export"
