"""The long-running workers `erp-pipeline run NAME` knows, and which `dev` starts."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from pipeline.settings import Settings


@dataclass(frozen=True)
class Worker:
    """A worker: its entry point (`module:function(settings)`, blocking until SIGTERM)."""

    name: str
    entry_point: str
    description: str
    in_dev: bool = True

    def load(self) -> Callable[[Settings], None]:
        """Import the entry point (workers are imported only when run)."""
        module, _, function = self.entry_point.partition(":")
        run: Callable[[Settings], None] = getattr(importlib.import_module(module), function)
        return run


#: Every worker, in the order `dev` starts them. Entry points are imported lazily.
_IN_ORDER: tuple[Worker, ...] = (
    Worker("processor", "pipeline.processor.worker:run", "Approval queue: rules, state, exports"),
    Worker(
        "projection", "consumers.readmodel.projection:run", "Writes erp.status into the read model"
    ),
    Worker(
        "catalog",
        "consumers.readmodel.catalog:run",
        "Writes submissions, decisions and refusals into the read model (the console's detail)",
    ),
    Worker(
        "exporter", "consumers.export.worker:run", "Exports accepted items into the ERP, once each"
    ),
    Worker(
        "mailsink",
        "consumers.dev.mailsink:run",
        "Local SMTP sink writing each e-mail to .data/maildrop (dev starts one itself)",
        in_dev=False,
    ),
    Worker(
        "notifier",
        "consumers.notify.worker:run",
        "Sends erp.notifications e-mails over SMTP, once each",
    ),
    Worker(
        "console",
        "consumers.console.worker:run",
        "The approver's console: pages and JSON API on CONSOLE_PORT, decisions to erp.decisions",
    ),
)
WORKERS: dict[str, Worker] = {worker.name: worker for worker in _IN_ORDER}
