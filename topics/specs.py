"""One `TopicSpec` per contract topic: name, partitions, retention, key format, value model."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from topics import events as ev

DAY_MS = 24 * 60 * 60 * 1000


class KeyFormat(StrEnum):
    """How a topic's records are keyed."""

    ITEM = "{company_id}:{item_type}:{item_id}"
    DIRECTORY = "{company_id}:user:{user_id} | {company_id}:settings"
    COMPANY_OR_ITEM = "{company_id}:{item_type}:{item_id} | {company_id}"


@dataclass(frozen=True)
class TopicSpec:
    """A topic of the contract. `name` is the contract's name; `full_name()` adds the prefix."""

    name: str
    partitions: int
    cleanup_policy: str
    retention_ms: int
    key_format: KeyFormat
    value_type: Any
    description: str
    event_types: tuple[str, ...]
    #: "upstream" for topics integrators publish to; "pipeline" for those the pipeline writes.
    written_by: str = "pipeline"
    replication_factor: int = 1
    adapter: TypeAdapter[Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "adapter", TypeAdapter(self.value_type))

    def full_name(self, prefix: str = "") -> str:
        """The topic name with a deployment's prefix (its `ERP_TOPIC_PREFIX`)."""
        return prefixed(prefix, self.name)

    def configs(self) -> dict[str, str]:
        """Broker-side topic configuration."""
        return {"cleanup.policy": self.cleanup_policy, "retention.ms": str(self.retention_ms)}


FOREVER = -1

DIRECTORY = TopicSpec(
    "erp.directory",
    6,
    "compact",
    FOREVER,
    KeyFormat.DIRECTORY,
    ev.DirectoryEvent,
    "Approvers and company settings; latest per key wins.",
    ("ApproverUpdated", "CompanySettingsUpdated"),
    written_by="upstream",
)
SUBMISSIONS = TopicSpec(
    "erp.submissions",
    6,
    "delete",
    FOREVER,
    KeyFormat.ITEM,
    ev.SubmissionEvent,
    "Send to ERP and Retrieve from ERP, from upstream.",
    ("ItemSubmitted", "ItemRetrieved"),
    written_by="upstream",
)
DECISIONS = TopicSpec(
    "erp.decisions",
    6,
    "delete",
    FOREVER,
    KeyFormat.ITEM,
    ev.DecisionEvent,
    "Accept, reject and retry decisions of accounting approvers.",
    ("ItemAccepted", "ItemRejected", "ExportRetryRequested"),
    written_by="upstream",
)
EXPORTS = TopicSpec(
    "erp.exports",
    6,
    "delete",
    30 * DAY_MS,
    KeyFormat.ITEM,
    ev.ExportEvent,
    "Accepted items to write into the ERP.",
    ("ExportRequested",),
)
EXPORT_RESULTS = TopicSpec(
    "erp.export-results",
    6,
    "delete",
    FOREVER,
    KeyFormat.ITEM,
    ev.ExportResultEvent,
    "Outcome of every export attempt.",
    ("ItemExported", "ExportAttemptFailed"),
)
FAILED_TO_EXPORT = TopicSpec(
    "erp.failed-to-export",
    6,
    "delete",
    FOREVER,
    KeyFormat.ITEM,
    ev.FailedExportEvent,
    "Exports that failed for good, with the ERP's error.",
    ("ExportFailed",),
)
STATUS = TopicSpec(
    "erp.status",
    6,
    "compact,delete",
    FOREVER,
    KeyFormat.ITEM,
    ev.StatusEvent,
    "Every status change of every item; compacted to the latest per item.",
    ("ItemStatusChanged",),
)
NOTIFICATIONS = TopicSpec(
    "erp.notifications",
    6,
    "delete",
    30 * DAY_MS,
    KeyFormat.COMPANY_OR_ITEM,
    ev.NotificationEvent,
    "E-mails to send.",
    ("RejectionNotice", "DailySummary", "ExportFailureNotice"),
)
DEAD_LETTERS = TopicSpec(
    "erp.dead-letters",
    6,
    "delete",
    FOREVER,
    KeyFormat.COMPANY_OR_ITEM,
    ev.DeadLetterEvent,
    "Events the pipeline could not use, with the stage, the reason and the original bytes.",
    ("EventRefused",),
)

#: Records of an item topic that arrived on another partition than their key's murmur2 hash
#: names (a producer with another partitioner), re-published by the processor, key and value
#: unchanged, on the partition the hash names, with their origin in headers. Internal: not
#: part of the contract; co-partitioned with the item topics, so it has as many partitions.
ITEM_ROUTES = TopicSpec(
    "erp.item-routes",
    SUBMISSIONS.partitions,
    "delete",
    30 * DAY_MS,
    KeyFormat.ITEM,
    Annotated[
        ev.ItemSubmitted
        | ev.ItemRetrieved
        | ev.ItemAccepted
        | ev.ItemRejected
        | ev.ExportRetryRequested
        | ev.ItemExported
        | ev.ExportAttemptFailed,
        Field(discriminator="event_type"),
    ],
    "Internal: item records re-routed to the partition their key names (origin in headers).",
    (),
    written_by="pipeline (internal)",
)

ALL_TOPICS: tuple[TopicSpec, ...] = (
    DIRECTORY,
    SUBMISSIONS,
    DECISIONS,
    EXPORTS,
    EXPORT_RESULTS,
    FAILED_TO_EXPORT,
    STATUS,
    NOTIFICATIONS,
    DEAD_LETTERS,
)
TOPICS_BY_NAME: dict[str, TopicSpec] = {spec.name: spec for spec in ALL_TOPICS}
#: Topics the pipeline keeps for itself, outside the contract; `topics create` makes them too.
INTERNAL_TOPICS: tuple[TopicSpec, ...] = (ITEM_ROUTES,)


def prefixed(prefix: str, name: str) -> str:
    """A deployed name: a topic's, a consumer group's or the processor app's, with the
    deployment's prefix (`ERP_TOPIC_PREFIX`, e.g. `staging.`). The only place names are prefixed.
    """
    return f"{prefix}{name}"


def spec_for(name: str, prefix: str = "") -> TopicSpec:
    """The spec of a topic given by contract name or by prefixed name."""
    if name in TOPICS_BY_NAME:
        return TOPICS_BY_NAME[name]
    for spec in (*ALL_TOPICS, *INTERNAL_TOPICS):
        if name in (spec.name, spec.full_name(prefix)):
            return spec
    raise KeyError(f"unknown topic {name!r}; known: {', '.join(TOPICS_BY_NAME)}")


def key_of(event: ev.Envelope) -> str:
    """The record key of an event, per the contract (what every producer of ours sends)."""
    if isinstance(event, ev.ApproverUpdated):
        return f"{event.company_id}:user:{event.payload.user_id}"
    if isinstance(event, ev.CompanySettingsUpdated):
        return f"{event.company_id}:settings"
    if event.item is not None:
        return event.item_key
    return event.company_id


def expected_key(spec: TopicSpec, event: ev.Envelope) -> str:
    """The one key a record holding `event` may have on `spec`'s topic, per its `key_format`.

    Item-keyed topics take the item's `company:type:id`, the directory a user's or the
    settings' key, company-or-item topics the item's key or (for an event of no item, such as
    a daily summary) the company id. Raises ValueError when `event` has no key in that format
    (an item-keyed topic's event without an item), which `decode` already rules out.
    """
    if spec.key_format is KeyFormat.ITEM:
        if event.item is None:
            raise ValueError(f"{event.event_type} has no item: no key on {spec.name}")
        return event.item_key
    if spec.key_format is KeyFormat.DIRECTORY and not isinstance(
        event, ev.ApproverUpdated | ev.CompanySettingsUpdated
    ):
        raise ValueError(f"{event.event_type} has no key on {spec.name}")
    return key_of(event)
