"""The ERP port: export one accepted item, get its ERP reference, or learn why not."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from topics.events import ExportRequested
from topics.payloads import KafkaSource


class ErpError(Exception):
    """The ERP did not take the export. `code` is short and stable; `message` is the ERP's own."""

    retryable: bool = False

    def __init__(self, code: str, message: str, *, response: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.response = response


class PermanentErpError(ErpError):
    """The ERP refused the item itself (a rule, a missing record): trying again will not help."""

    retryable = False


class TransientErpError(ErpError):
    """The ERP could not be asked (connection, timeout, serialization, deadlock): try again."""

    retryable = True


@dataclass(frozen=True)
class ExportOutcome:
    """What the export ledger holds for one `export_id`."""

    export_id: str
    attempt: int
    exported: bool
    recorded_at: dt.datetime
    erp_reference: str | None = None
    error_code: str | None = None
    error_message: str | None = None


class ErpPort(Protocol):
    """An ERP that exports each `export_id` at most once.

    `export` writes the item and its ledger entry atomically and returns the outcome. When the
    ledger already holds a success for the `export_id`, or a failure of the same or a later
    attempt, it returns that entry without writing again.
    """

    async def export(self, request: ExportRequested, source: KafkaSource) -> ExportOutcome:
        """Export the accepted item; raises `PermanentErpError` or `TransientErpError`."""
        ...

    async def export_batch(
        self, requests: Sequence[tuple[ExportRequested, KafkaSource]]
    ) -> list[ExportOutcome | ErpError | None]:
        """Export each request, in order, in one transaction of the ERP; one entry per request.

        Each export's ERP records and ledger row are written together or not at all, as by
        `export`: an export that fails leaves the others written. Its
        entry is the `ErpError` (nothing of it written, no failure recorded: the caller retries
        it or records the failure), and every later request of the same item is not tried
        (None), so that none overtakes it. An `ExportOutcome` is written once the call returns.
        Raises `TransientErpError` when the transaction itself failed: nothing was written.
        """
        ...

    async def record_failure(
        self, request: ExportRequested, source: KafkaSource, error: ErpError
    ) -> ExportOutcome:
        """Record a final failure so a redelivery re-emits it (never overwrites a success)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
