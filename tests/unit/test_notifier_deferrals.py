"""When a deferred notification has no try left, and the settings that bound it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from consumers.notify.ledger import Deferrals
from pipeline.settings import Settings


@pytest.mark.parametrize(
    ("count", "for_s", "exhausted"),
    [
        (0, 0.0, False),  # never deferred
        (1, 0.0, False),
        (2, 899.0, False),
        (3, 10.0, True),  # the third of 3 tries deferred
        (4, 10.0, True),  # a lowered NOTIFIER_MAX_ATTEMPTS
        (1, 900.0, True),  # deferred for NOTIFIER_DEFER_MAX_S since the first deferral
        (0, 5000.0, False),  # time alone, with no deferral, says nothing
    ],
)
def test_a_deferred_notification_is_exhausted_by_tries_or_by_time(
    count: int, for_s: float, exhausted: bool
) -> None:
    assert Deferrals(count, for_s).exhausted(max_attempts=3, max_s=900.0) is exhausted


def test_the_bound_is_configured_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFIER_MAX_ATTEMPTS", raising=False)
    monkeypatch.delenv("NOTIFIER_DEFER_MAX_S", raising=False)
    assert (Settings().notifier_max_attempts, Settings().notifier_defer_max_s) == (10, 900.0)
    monkeypatch.setenv("NOTIFIER_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("NOTIFIER_DEFER_MAX_S", "120")
    assert (Settings().notifier_max_attempts, Settings().notifier_defer_max_s) == (3, 120.0)
    monkeypatch.setenv("NOTIFIER_MAX_ATTEMPTS", "0")
    with pytest.raises(ValidationError):
        Settings()
