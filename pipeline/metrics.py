"""Every Prometheus metric of the pipeline, in one class that is handed its registry."""

from __future__ import annotations

import time

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from topics.events import Envelope, EventRefused

#: Decision and export latencies range from seconds (automation) to days (people).
HUMAN_BUCKETS = (1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 86400, 3 * 86400, 7 * 86400)
CALL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    """The `erp_pipeline_*` metrics. Labels are small fixed sets: never an e-mail or an item id.

    Each worker builds one with its own registry (tests build one per test).
    """

    def __init__(self, registry: CollectorRegistry | None = None, *, process: bool = True) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        if process:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
        r = self.registry
        self.events_consumed = Counter(
            "erp_pipeline_events_consumed_total",
            "Events consumed, by topic and outcome (processed, duplicate, refused, held).",
            ["topic", "outcome"],
            registry=r,
        )
        self.events_produced = Counter(
            "erp_pipeline_events_produced_total",
            "Events produced, by topic.",
            ["topic"],
            registry=r,
        )
        self.events_refused = Counter(
            "erp_pipeline_events_refused_total",
            "Events dead-lettered as EventRefused, by stage.",
            ["stage"],
            registry=r,
        )
        self.items = Gauge(
            "erp_pipeline_items",
            "Items per status, item type and company (the queues' depth).",
            ["status", "item_type", "company"],
            registry=r,
        )
        self.oldest_ready_age = Gauge(
            "erp_pipeline_oldest_ready_to_export_age_seconds",
            "Age of the oldest item waiting in Ready to Export, per company.",
            ["company"],
            registry=r,
        )
        self.submission_to_decision = Histogram(
            "erp_pipeline_submission_to_decision_seconds",
            "Time from Send to ERP to accept or reject.",
            ["decision"],
            buckets=HUMAN_BUCKETS,
            registry=r,
        )
        self.accept_to_synced = Histogram(
            "erp_pipeline_accept_to_synced_seconds",
            "Time from accept to synced in the ERP.",
            buckets=HUMAN_BUCKETS,
            registry=r,
        )
        self.export_attempts = Counter(
            "erp_pipeline_export_attempts_total",
            "Export attempts, by outcome (exported, transient, permanent, duplicate).",
            ["outcome"],
            registry=r,
        )
        self.export_failures = Counter(
            "erp_pipeline_export_failures_total",
            "Failed export attempts, by error class: the ERP error catalogue's code (ErrorCode).",
            ["error_class"],
            registry=r,
        )
        self.erp_call = Histogram(
            "erp_pipeline_erp_call_seconds",
            "Latency of calls into the ERP.",
            buckets=CALL_BUCKETS,
            registry=r,
        )
        self.consumer_lag = Gauge(
            "erp_pipeline_consumer_lag",
            "End offset minus committed offset, per consumer group, topic and partition.",
            ["group", "topic", "partition"],
            registry=r,
        )
        self.last_commit = Gauge(
            "erp_pipeline_last_commit_timestamp_seconds",
            "Unix time of the last offset commit, per consumer group "
            "(time since last commit = time() - this).",
            ["group"],
            registry=r,
        )
        self.processor_reseeks = Counter(
            "erp_pipeline_processor_reseeks_total",
            "Times the processor sought an input partition back to its checkpoint because "
            "records past it were never applied, by topic and cause (gap; stall; unfetched: "
            "a partition its consumer never fetched).",
            ["topic", "cause"],
            registry=r,
        )
        self.processor_reroutes = Counter(
            "erp_pipeline_processor_reroutes_total",
            "Records of an item topic the processor re-published to the repartition topic "
            "because they arrived on another partition than their key's murmur2 hash names "
            "(a producer with another partitioner), by the topic they arrived on.",
            ["topic"],
            registry=r,
        )
        self.processor_batch_records = Histogram(
            "erp_pipeline_processor_batch_records",
            "Records per batch the processor's items agent applied together (one changelog "
            "flush and one publish flush per batch).",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000),
            registry=r,
        )
        self.broker_call_retries = Counter(
            "erp_pipeline_broker_call_retries_total",
            "Broker calls retried because they did not answer in time (reason timeout) or "
            "failed (reason error), by call (replica_start, replica_end_offsets, probe_start, "
            "probe_offsets).",
            ["call", "reason"],
            registry=r,
        )
        self.notifications = Counter(
            "erp_pipeline_notifications_total",
            "Notifications, by kind and outcome (sent, failed, duplicate; unaddressable: "
            "a recipient the exporter could give no failure notice, its address not mailable).",
            ["kind", "outcome"],
            registry=r,
        )
        self.notification_deferrals = Counter(
            "erp_pipeline_notification_deferrals_total",
            "Tries of a notification the mail server deferred (a 4xx to RCPT TO or DATA), by "
            "kind and outcome (retry: tried again later; failed: its last try, marked failed).",
            ["kind", "outcome"],
            registry=r,
        )

    def published(self, topic: str, event: Envelope) -> None:
        """Count an event the broker acknowledged on `topic` (the contract name), and a dead
        letter's stage."""
        self.events_produced.labels(topic).inc()
        if isinstance(event, EventRefused):
            self.events_refused.labels(event.payload.stage.value).inc()

    def committed(self, group: str) -> None:
        """Record that `group` has just committed offsets."""
        self.last_commit.labels(group).set(time.time())
