"""The dev stack's workers run as processes on topics of their own, with settings of a test's."""

from __future__ import annotations

from dataclasses import dataclass, field

from consumers.dev.stack import Stack


@dataclass
class Workers(Stack):
    """The stack's workers on topics of their own, with test-friendly settings in `extra`."""

    extra: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {**super().env(), **self.extra}
