"""The durability order of `Step.commit`: store, make durable, publish, clear, advance."""

from __future__ import annotations

import pytest

from consumers.dev import samples as se
from pipeline.processor import checkpoints
from pipeline.rules import outbox
from tests.support.processor import Harness

SUBMISSIONS = "erp.submissions"
DECISIONS = "erp.decisions"
ITEM = "acme-builders:project:prj-100"
ACCEPT = {"erp_job_id": "J-1", "job_template": "T"}


async def test_nothing_is_published_before_the_state_and_its_outbox_are_durable() -> None:
    harness = Harness()
    await harness.send(SUBMISSIONS, se.project_submitted())
    assert harness.calls == [
        ("put", outbox.key(ITEM)),
        ("put", ITEM.encode()),
        ("durable", None),
        ("publish", "ItemStatusChanged"),
        ("delete", outbox.key(ITEM)),
        ("put", checkpoints.key(SUBMISSIONS, 0)),
    ]


async def test_every_event_is_published_in_order_before_the_outbox_is_cleared() -> None:
    harness = Harness()
    await harness.send(SUBMISSIONS, se.project_submitted())
    harness.calls.clear()
    published = await harness.send(DECISIONS, se.accepted("project", "prj-100", **ACCEPT))
    assert len(published) >= 2
    assert harness.calls == [
        ("put", outbox.key(ITEM)),
        ("put", ITEM.encode()),
        ("durable", None),
        *(("publish", e.event_type) for e in published),
        ("delete", outbox.key(ITEM)),
        ("put", checkpoints.key(DECISIONS, 0)),
    ]


async def test_a_failed_publish_keeps_the_outbox_and_the_checkpoint_where_they_were() -> None:
    harness = Harness(publish_failures=1)
    with pytest.raises(ConnectionError):
        await harness.send(SUBMISSIONS, se.project_submitted())
    assert harness.calls[-2:] == [("durable", None), ("publish", "ItemStatusChanged")]
    assert outbox.key(ITEM) in harness.items
    assert checkpoints.key(SUBMISSIONS, 0) not in harness.items


async def test_a_dead_letter_is_published_before_the_checkpoint_moves() -> None:
    harness = Harness()
    await harness.send(SUBMISSIONS, b"\x00not json")
    assert harness.calls == [
        ("publish", "EventRefused"),
        ("put", checkpoints.key(SUBMISSIONS, 0)),
    ]


async def test_a_duplicate_only_moves_the_checkpoint() -> None:
    harness = Harness()
    raw = se.project_submitted()
    await harness.send(SUBMISSIONS, raw)
    harness.calls.clear()
    assert await harness.send(SUBMISSIONS, raw) == []
    assert harness.calls == [("put", checkpoints.key(SUBMISSIONS, 0))]
