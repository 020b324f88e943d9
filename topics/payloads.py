"""Payloads of the contract's event types, with per-item-type snapshots and accept fields."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field

from topics.fields import (
    SYSTEM_EMAIL,
    Code,
    Date,
    Email,
    ErpReference,
    Frozen,
    Identifier,
    LongText,
    Money,
    MultilineText,
    NonNegativeInt,
    Offset,
    PositiveInt,
    Reason,
    ShortId,
    Text,
    Timestamp,
)
from topics.limits import MAX_RECORD_BYTES, MAX_SOURCE_KEY_BYTES


class ItemType(StrEnum):
    """Kinds of item that can be sent to the ERP."""

    PROJECT = "project"
    COMMITMENT = "commitment"
    COMMITMENT_CHANGE_ORDER = "commitment_change_order"
    PRIME_CONTRACT_CHANGE_ORDER = "prime_contract_change_order"


class ItemStatus(StrEnum):
    """Statuses published on `erp.status`."""

    SEND_REFUSED = "send_refused"
    READY_TO_EXPORT = "ready_to_export"
    EXPORTING = "exporting"
    SYNCED = "synced"
    FAILED_TO_EXPORT = "failed_to_export"
    REJECTED = "rejected"
    RETRIEVED = "retrieved"


class ItemRef(Frozen):
    """`{type, id}` of an item; with the company it forms the item key."""

    type: ItemType
    id: Identifier


class Actor(Frozen):
    """Who did it."""

    user_id: Identifier
    email: Email
    name: Text | None = None


SYSTEM_ACTOR = Actor(user_id="erp-pipeline", email=SYSTEM_EMAIL, name="ERP pipeline")

# --- directory -------------------------------------------------------------------------------


class ErpToolPermission(StrEnum):
    """Permission level on the ERP Integrations tool."""

    NONE = "none"
    READ_ONLY = "read_only"
    STANDARD = "standard"
    ADMIN = "admin"


class ApproverUpdatedPayload(Frozen):
    user_id: Identifier
    email: Email
    name: Text
    erp_tool_permission: ErpToolPermission
    can_push_to_accounting: bool
    digest_subscribed: bool = True


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA timezone {value!r}") from exc
    return value


class CompanySettingsUpdatedPayload(Frozen):
    erp_system: Literal["spectrum"] = "spectrum"
    timezone: Annotated[str, AfterValidator(_check_timezone)] = "UTC"
    daily_summary_hour: Annotated[int, Field(ge=0, le=23)] = 7
    custom_cco_id_enabled: bool = False
    pcco_export_enabled: bool = True
    company_name: Text | None = Field(
        default=None,
        description="The company's display name, for e-mails and the console (absent: its id).",
    )


# --- submissions: type-specific snapshots ----------------------------------------------------


class ProjectRef(Frozen):
    id: Identifier
    name: Text


class Vendor(Frozen):
    id: Identifier
    name: Text
    erp_vendor_id: Text | None = None


class CommitmentLine(Frozen):
    id: Identifier
    cost_code: Text
    erp_cost_code: Text | None = None
    description: MultilineText = ""
    amount: Money


class PrimeLine(Frozen):
    id: Identifier
    description: MultilineText = ""
    amount: Money
    associated_prime_line_item: Text | None = None


class ProjectSnapshot(Frozen):
    active: bool
    name: Text
    project_number: Text
    address: MultilineText | None = None
    division: Text | None = None
    customer: Text | None = None
    price_type: Text | None = None
    taxable: bool | None = None


class CommitmentSnapshot(Frozen):
    commitment_type: Literal["subcontract", "purchase_order"]
    vendor: Vendor
    description: MultilineText = ""
    line_items: list[CommitmentLine] = Field(default_factory=list)


class CommitmentRef(Frozen):
    id: Identifier
    number: Text
    erp_synced: bool


class CommitmentChangeOrderSnapshot(Frozen):
    commitment: CommitmentRef
    vendor: Vendor
    date_created: Date
    line_items: list[CommitmentLine] = Field(default_factory=list)


class PrimeContractRef(Frozen):
    id: Identifier
    erp_synced: bool


class PrimeContractChangeOrderSnapshot(Frozen):
    prime_contract: PrimeContractRef
    date: Date | None = None
    billing_item_code: Text | None = None
    line_items: list[PrimeLine] = Field(default_factory=list)


Snapshot = (
    ProjectSnapshot
    | CommitmentSnapshot
    | CommitmentChangeOrderSnapshot
    | PrimeContractChangeOrderSnapshot
)

SNAPSHOT_MODELS: dict[ItemType, type[Frozen]] = {
    ItemType.PROJECT: ProjectSnapshot,
    ItemType.COMMITMENT: CommitmentSnapshot,
    ItemType.COMMITMENT_CHANGE_ORDER: CommitmentChangeOrderSnapshot,
    ItemType.PRIME_CONTRACT_CHANGE_ORDER: PrimeContractChangeOrderSnapshot,
}


class ItemSubmittedPayload(Frozen):
    created_by: Actor
    number: Text
    title: Text
    status: Text
    amount: Money
    project: ProjectRef
    snapshot: Snapshot


class ItemRetrievedPayload(Frozen):
    reason: MultilineText | None = None
    submission_version: PositiveInt | None = None


# --- decisions: type-specific accept fields --------------------------------------------------


class ProjectAcceptFields(Frozen):
    submission_version: PositiveInt | None = None
    erp_job_id: Code
    job_template: Code


class CommitmentAcceptFields(Frozen):
    submission_version: PositiveInt | None = None
    details: MultilineText | None = None


class CommitmentChangeOrderAcceptFields(Frozen):
    submission_version: PositiveInt | None = None
    change_order_date: Date
    erp_change_order_id: Code | None = None
    description: MultilineText | None = None


class PrimeContractChangeOrderAcceptFields(Frozen):
    submission_version: PositiveInt | None = None
    transaction_date: Date | None = None


AcceptFields = (
    ProjectAcceptFields
    | CommitmentAcceptFields
    | CommitmentChangeOrderAcceptFields
    | PrimeContractChangeOrderAcceptFields
)

ACCEPT_MODELS: dict[ItemType, type[Frozen]] = {
    ItemType.PROJECT: ProjectAcceptFields,
    ItemType.COMMITMENT: CommitmentAcceptFields,
    ItemType.COMMITMENT_CHANGE_ORDER: CommitmentChangeOrderAcceptFields,
    ItemType.PRIME_CONTRACT_CHANGE_ORDER: PrimeContractChangeOrderAcceptFields,
}


class ItemRejectedPayload(Frozen):
    submission_version: PositiveInt | None = None
    reason: Reason


class ExportRetryRequestedPayload(Frozen):
    submission_version: PositiveInt | None = None


# --- exports -----------------------------------------------------------------------------------


class ExportRequestedPayload(Frozen):
    export_id: ShortId
    submission_version: PositiveInt
    attempt: PositiveInt = 1
    created_by: Actor
    sent_by: Actor
    accepted_by: Actor
    number: Text
    title: Text
    amount: Money
    project: ProjectRef
    snapshot: Snapshot
    accept_fields: AcceptFields
    retried_by: Actor | None = Field(
        default=None,
        description="Who asked for this attempt with ExportRetryRequested (absent on the "
        "accept's own attempt). A failure is told to this person and the sender, not to the "
        "approver who accepted.",
    )


class ItemExportedPayload(Frozen):
    export_id: ShortId
    erp_reference: ErpReference
    exported_at: Timestamp
    submission_version: PositiveInt | None = None


class KafkaSource(Frozen):
    """Coordinates of the record an event is about (topic and key quoted as they were)."""

    topic: str
    partition: NonNegativeInt
    offset: Offset
    key: str | None = None
    key_truncated: bool = Field(
        default=False,
        description=f"True when `key` is only the start of the record's key (cut at "
        f"{MAX_SOURCE_KEY_BYTES} bytes, between characters); `key_bytes` gives the whole size.",
    )
    key_bytes: NonNegativeInt | None = Field(
        default=None, description="Size in bytes of the record's whole key, when it was cut."
    )


class ExportAttemptFailedPayload(Frozen):
    export_id: ShortId
    attempt: PositiveInt
    retryable: bool
    error_code: ShortId
    error_message: LongText
    erp_response: LongText | None = None
    submission_version: PositiveInt | None = None


class ExportFailedPayload(ExportAttemptFailedPayload):
    source: KafkaSource


# --- status, notifications, dead letters -------------------------------------------------------


class ItemStatusChangedPayload(Frozen):
    status: ItemStatus
    previous_status: ItemStatus | None = None
    submission_version: NonNegativeInt
    reason: LongText | None = None
    erp_reference: ErpReference | None = None
    reasons: list[MultilineText] = Field(default_factory=list)
    item_number: Text | None = None
    item_title: Text | None = None
    amount: Money | None = None
    project: ProjectRef | None = None
    sent_by: Actor | None = None
    sent_at: Timestamp | None = None
    #: The item's own counter, 1, 2, 3, ... in the order the processor applied its changes:
    #: the only order a reader may rely on (never `occurred_at`, a sender's clock). Always set
    #: by the pipeline from now on; absent on status changes written before it existed, which
    #: come before every status change that has one.
    sequence: PositiveInt | None = Field(
        default=None,
        description="Per-item counter assigned by the processor, strictly increasing in the "
        "order it applied the item's changes; the only order to rely on (occurred_at comes "
        "from a sender's clock). Absent only on status changes written before it was added, "
        "which come before every one that has it.",
    )


class NoticeItem(Frozen):
    """The item a notification is about, with what a person needs to recognise it."""

    type: ItemType
    id: Identifier
    number: Text | None = None
    title: Text | None = None
    project_name: Text | None = None


class RejectionNoticePayload(Frozen):
    to: Email
    item: NoticeItem
    reason: Reason
    rejected_by: Actor


class SummaryLine(Frozen):
    item: NoticeItem
    title: Text
    submitted_at: Timestamp
    sent_by: Actor
    amount: Money | None = Field(default=None, description="The item's amount as submitted.")


class DailySummaryPayload(Frozen):
    to: Email
    date: Date
    company_name: Text | None = Field(
        default=None,
        description="The company's display name (`CompanySettingsUpdated.company_name`).",
    )
    items: list[SummaryLine] = Field(
        description="The items waiting longest, as many as fit in one record (oldest first)."
    )
    more_items: NonNegativeInt = Field(
        default=0,
        description='How many more items wait than `items` lists (the e-mail says "and N more").',
    )


class ExportFailureNoticePayload(Frozen):
    to: Email
    item: NoticeItem
    error_message: LongText


class RefusalStage(StrEnum):
    """Where in the pipeline an event was refused."""

    DECODE = "decode"
    SCHEMA = "schema"
    AUTHORIZE = "authorize"
    TRANSITION = "transition"
    BUSINESS_RULE = "business_rule"


class EventRefusedPayload(Frozen):
    """A refusal; `raw` (and `source`) quote the refused record as it was, any character."""

    stage: RefusalStage
    error: LongText
    source: KafkaSource
    raw: str = Field(
        description="The refused record's value: as text when it is UTF-8, else base64 "
        "(`raw_encoding`); only its start when `raw_truncated`."
    )
    raw_encoding: Literal["text", "base64"] = "text"
    raw_truncated: bool = Field(
        default=False,
        description="True when `raw` holds only the start of the value, cut so that the dead "
        f"letter fits in one record (at most {MAX_RECORD_BYTES} bytes with its key and "
        "headers); text is cut between characters, base64 in whole groups.",
    )
    raw_bytes: NonNegativeInt | None = Field(
        default=None, description="Size in bytes of the whole refused value, when it was cut."
    )
    refused_event_id: ShortId | None = None
    refused_event_type: ShortId | None = None
