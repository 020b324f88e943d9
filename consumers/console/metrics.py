"""The console's metrics: requests, decisions sent, refusals on the spot (fixed label sets)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class ConsoleMetrics:
    """`erp_pipeline_console_*` on the given registry. Labels never carry a user or an item."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "erp_pipeline_console_requests_total",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.decisions = Counter(
            "erp_pipeline_console_decisions_total",
            "Decisions published to erp.decisions, by event type.",
            ["decision"],
            registry=registry,
        )
        self.refusals = Counter(
            "erp_pipeline_console_refusals_total",
            "Decisions refused on the spot, by the stage the pipeline would refuse them at.",
            ["stage"],
            registry=registry,
        )
