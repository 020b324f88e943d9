"""The processor's topics, routes and faust configuration (plain data; no faust import)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.settings import Settings
from topics import MAX_EVENT_BYTES, TopicSpec
from topics.events import ItemStatusChanged
from topics.limits import KAFKA_MAX_REQUEST_BYTES
from topics.specs import (
    DEAD_LETTERS,
    DECISIONS,
    EXPORT_RESULTS,
    EXPORTS,
    ITEM_ROUTES,
    NOTIFICATIONS,
    STATUS,
    SUBMISSIONS,
    KeyFormat,
)

APP_NAME = "erp-processor"
ITEMS_TABLE = "items"
ITEM_TOPICS = (SUBMISSIONS, DECISIONS, EXPORT_RESULTS)
#: What the items agent reads: the item topics and the repartition topic their records that
#: arrived on another partition than their key names are re-routed through.
INPUT_TOPICS = (*ITEM_TOPICS, ITEM_ROUTES)
ROUTES: dict[str, TopicSpec] = {
    "ItemStatusChanged": STATUS,
    "ExportRequested": EXPORTS,
    "RejectionNotice": NOTIFICATIONS,
    "DailySummary": NOTIFICATIONS,
    "EventRefused": DEAD_LETTERS,
}


def internal_topic_specs() -> list[TopicSpec]:
    """Topics faust needs, to be created from these specs before it starts.

    The embedded broker would otherwise auto-create them on first use with its own partition
    count, breaking the table's co-partitioning with the item topics.
    """
    return [
        TopicSpec(
            f"{APP_NAME}-{ITEMS_TABLE}-changelog",
            SUBMISSIONS.partitions,
            "compact",
            -1,
            KeyFormat.ITEM,
            ItemStatusChanged,
            "Changelog of the processor's item table (item states and input checkpoints).",
            (),
        ),
        TopicSpec(
            f"{APP_NAME}-__assignor-__leader",
            1,
            "delete",
            -1,
            KeyFormat.ITEM,
            ItemStatusChanged,
            "faust leader election.",
            (),
        ),
    ]


#: The items table's RocksDB buffers, bounded (faust's defaults are 64 MiB write buffers, three
#: per database, and a 2 GiB block cache, per partition: memtables alone may grow past 1 GiB
#: over the six partitions before anything is flushed). Each partition is one database, so at
#: most 6 * (2 * 2 + 4) = 48 MiB; the state lives on disk and in the changelog, the buffers
#: only make writes and recent reads cheaper.
ROCKSDB_OPTIONS: dict[str, int] = {
    "write_buffer_size": 2 * 2**20,
    "max_write_buffer_number": 2,
    "block_cache_size": 4 * 2**20,
}


def table_options(settings: Settings) -> dict[str, Any]:
    """`options` of the items table: `ROCKSDB_OPTIONS` for the rocksdb store, none else.

    A new dict on every call: faust's rocksdb store pops its own keys from the dict it is
    given.
    """
    return dict(ROCKSDB_OPTIONS) if settings.processor_store == "rocksdb" else {}


def state_dir(settings: Settings) -> Path:
    """Where the processor keeps local table state (faust's datadir)."""
    return Path(settings.data_dir) / "processor"


def faust_config(settings: Settings) -> dict[str, Any]:
    """`faust.App` options for the settings: the broker facts of DESIGN.md, raw serializers."""
    store = "rocksdb://" if settings.processor_store == "rocksdb" else "memory://"
    web: dict[str, Any] = (
        {"web_enabled": True, "web_port": settings.processor_web_port}
        if settings.processor_web_port
        else {"web_enabled": False}
    )
    return {
        "broker": [f"kafka://{host}" for host in settings.require_bootstrap().split(",")],
        "store": store,
        "datadir": str(state_dir(settings)),
        "broker_session_timeout": settings.kafka_session_timeout_ms / 1000,
        "broker_rebalance_timeout": settings.kafka_session_timeout_ms / 1000,
        "broker_heartbeat_interval": settings.kafka_heartbeat_interval_ms / 1000,
        "producer_enable_idempotence": False,
        # Kafka's default: what the embedded broker would take and a real one refuses fails
        # here too (nothing the rules let through comes near it: `limits.MAX_RECORD_BYTES`)
        "producer_max_request_size": KAFKA_MAX_REQUEST_BYTES,
        # the producer batches; on brokers that report a partition's end as its last batch's
        # first offset + 1 (KAFKA_SINGLE_RECORD_BATCHES) the step ends each batch with one
        # record alone per partition instead, which keeps the ends exact (`Step.commit`)
        # between batches. Within a batch (after its flush, before that last record) such a
        # broker reports the end one batch short of what this instance has written: faust's
        # check that local table state is not ahead of the changelog would then stop a worker
        # whose table recovery (a rebalance) lands there. Off on those brokers: state the
        # changelog does not back is dropped at start instead (`local_state`).
        "recovery_consistency_check": not settings.kafka_single_record_batches,
        # oversized values must still be fetched, to be refused rather than stall a partition
        "consumer_max_fetch_size": 4 * MAX_EVENT_BYTES,
        "producer_acks": -1,
        "consumer_auto_offset_reset": "earliest",
        "topic_partitions": SUBMISSIONS.partitions,
        "topic_allow_declare": False,
        "key_serializer": "raw",
        "value_serializer": "raw",
        **web,
    }
