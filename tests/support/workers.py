"""The dev stack's workers run as processes on topics of their own, with settings of a test's."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from consumers.dev.stack import Stack
from pipeline.settings import Settings


@dataclass
class Workers(Stack):
    """The stack's workers on topics of their own, with test-friendly settings in `extra`."""

    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def beside(cls, stack: Stack, topics: Settings, data_dir: Path, **extra: str) -> Workers:
        """Workers on `stack`'s broker and database but `topics`' topics (an isolated prefix):
        in-memory table store, a short session timeout so a stopped worker's partitions move
        on quickly, warnings only, and `extra` settings (e.g. SMTP_URL)."""
        return cls(
            topics,
            stack.embedded_broker,
            stack.embedded_postgres,
            extra={
                "DATA_DIR": str(data_dir),
                "PROCESSOR_STORE": "memory",
                "KAFKA_SESSION_TIMEOUT_MS": "6000",
                "LOG_LEVEL": "WARNING",
                **extra,
            },
        )

    def env(self) -> dict[str, str]:
        return {**super().env(), **self.extra}
