"""`create_topics` with a principal that may not create every topic (Kafka ACLs)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from pipeline import kafka
from pipeline.kafka import KafkaUnavailable, create_topics
from pipeline.settings import Settings
from topics.specs import STATUS, SUBMISSIONS


class _Admin:
    """An admin client whose broker created STATUS and refuses SUBMISSIONS as not authorized."""

    def __init__(self, **options: Any) -> None:
        pass

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def create_topics(self, new: list[Any]) -> Any:
        answers = {"erp.status": (0, None), "erp.submissions": (29, "Authorization failed.")}
        return SimpleNamespace(topic_errors=[(t.name, *answers[t.name]) for t in new])


@pytest.fixture
def admin(monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setattr(kafka, "AIOKafkaAdminClient", _Admin)
    return Settings(kafka_bootstrap_servers="127.0.0.1:9092")


async def test_a_topic_the_principal_may_not_create_is_an_error_by_default(admin: Settings) -> None:
    with pytest.raises(KafkaUnavailable, match=r"could not create erp\.submissions: error 29"):
        await create_topics(admin, (STATUS, SUBMISSIONS))


async def test_a_worker_limited_to_its_own_topics_goes_on(admin: Settings) -> None:
    outcome = await create_topics(admin, (STATUS, SUBMISSIONS), unauthorized_ok=True)
    assert outcome == {"erp.status": "created", "erp.submissions": "not authorized"}
