"""The event envelope and one frozen model per event type of the contract."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from topics.fields import CompanyId, CorrelationId, Frozen, Timestamp
from topics.payloads import (
    ACCEPT_MODELS,
    SNAPSHOT_MODELS,
    AcceptFields,
    Actor,
    ApproverUpdatedPayload,
    CompanySettingsUpdatedPayload,
    DailySummaryPayload,
    EventRefusedPayload,
    ExportAttemptFailedPayload,
    ExportFailedPayload,
    ExportFailureNoticePayload,
    ExportRequestedPayload,
    ExportRetryRequestedPayload,
    ItemExportedPayload,
    ItemRef,
    ItemRejectedPayload,
    ItemRetrievedPayload,
    ItemStatusChangedPayload,
    ItemSubmittedPayload,
    ItemType,
    RejectionNoticePayload,
    Snapshot,
)

SCHEMA_VERSION = 1


class Envelope(Frozen):
    """Fields every event carries, on every topic."""

    event_id: uuid.UUID
    event_type: str
    schema_version: Literal[1] = 1
    occurred_at: Timestamp
    company_id: CompanyId
    item: ItemRef | None = None
    actor: Actor
    correlation_id: CorrelationId | None = None

    @property
    def item_key(self) -> str:
        """`{company_id}:{item_type}:{item_id}`, the key of every item event."""
        if self.item is None:
            raise ValueError(f"{self.event_type} has no item")
        return f"{self.company_id}:{self.item.type.value}:{self.item.id}"


class ItemEvent(Envelope):
    """An event about one item: `item` is required."""

    item: ItemRef


def _model_for(data: Any, models: dict[ItemType, type[Frozen]]) -> type[Frozen] | None:
    """The model that the event's item type selects, or None when the type itself is wrong."""
    item = data.get("item") if isinstance(data, dict) else None
    try:
        return models[ItemType(str(item.get("type")))] if isinstance(item, dict) else None
    except ValueError:
        return None  # the item type's own error says so


def _typed_by_item(data: Any, field: str, models: dict[ItemType, type[Frozen]]) -> Any:
    """Validate `payload[field]` with the model that the event's item type selects.

    The wire format does not repeat the item type inside the payload, so the choice is made
    here rather than by a union guess; errors then name the right model's fields.
    """
    model = _model_for(data, models)
    payload = data.get("payload") if isinstance(data, dict) else None
    if model is None or not isinstance(payload, dict) or field not in payload:
        return data
    if isinstance(payload[field], model):
        return data
    return {**data, "payload": {**payload, field: _validate_at(model, payload[field], field)}}


def _validate_at(model: type[Frozen], value: Any, *where: str) -> Frozen:
    """Validate `value` as `model`, reporting errors at their place in the event."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        details: list[InitErrorDetails] = [
            {
                "type": PydanticCustomError(problem["type"], problem["msg"]),
                "loc": ("payload", *where, *problem["loc"]),
                "input": problem["input"],
            }
            for problem in exc.errors(include_url=False)
        ]
        raise ValidationError.from_exception_data(model.__name__, details) from None


class ApproverUpdated(Envelope):
    event_type: Literal["ApproverUpdated"] = "ApproverUpdated"
    payload: ApproverUpdatedPayload


class CompanySettingsUpdated(Envelope):
    event_type: Literal["CompanySettingsUpdated"] = "CompanySettingsUpdated"
    payload: CompanySettingsUpdatedPayload


class ItemSubmitted(ItemEvent):
    event_type: Literal["ItemSubmitted"] = "ItemSubmitted"
    payload: ItemSubmittedPayload

    @model_validator(mode="before")
    @classmethod
    def _typed(cls, data: Any) -> Any:
        return _typed_by_item(data, "snapshot", SNAPSHOT_MODELS)


class ItemRetrieved(ItemEvent):
    event_type: Literal["ItemRetrieved"] = "ItemRetrieved"
    payload: ItemRetrievedPayload = ItemRetrievedPayload()


class ItemAccepted(ItemEvent):
    event_type: Literal["ItemAccepted"] = "ItemAccepted"
    payload: AcceptFields

    @model_validator(mode="before")
    @classmethod
    def _accept_fields(cls, data: Any) -> Any:
        model = _model_for(data, ACCEPT_MODELS)
        if model is None or not isinstance(data.get("payload"), dict):
            return data
        return {**data, "payload": _validate_at(model, data["payload"])}


class ItemRejected(ItemEvent):
    event_type: Literal["ItemRejected"] = "ItemRejected"
    payload: ItemRejectedPayload


class ExportRetryRequested(ItemEvent):
    event_type: Literal["ExportRetryRequested"] = "ExportRetryRequested"
    payload: ExportRetryRequestedPayload = ExportRetryRequestedPayload()


class ExportRequested(ItemEvent):
    event_type: Literal["ExportRequested"] = "ExportRequested"
    payload: ExportRequestedPayload

    @model_validator(mode="before")
    @classmethod
    def _typed(cls, data: Any) -> Any:
        data = _typed_by_item(data, "snapshot", SNAPSHOT_MODELS)
        return _typed_by_item(data, "accept_fields", ACCEPT_MODELS)


class ItemExported(ItemEvent):
    event_type: Literal["ItemExported"] = "ItemExported"
    payload: ItemExportedPayload


class ExportAttemptFailed(ItemEvent):
    event_type: Literal["ExportAttemptFailed"] = "ExportAttemptFailed"
    payload: ExportAttemptFailedPayload


class ExportFailed(ItemEvent):
    event_type: Literal["ExportFailed"] = "ExportFailed"
    payload: ExportFailedPayload


class ItemStatusChanged(ItemEvent):
    event_type: Literal["ItemStatusChanged"] = "ItemStatusChanged"
    payload: ItemStatusChangedPayload


class RejectionNotice(ItemEvent):
    event_type: Literal["RejectionNotice"] = "RejectionNotice"
    payload: RejectionNoticePayload


class DailySummary(Envelope):
    event_type: Literal["DailySummary"] = "DailySummary"
    payload: DailySummaryPayload


class ExportFailureNotice(ItemEvent):
    event_type: Literal["ExportFailureNotice"] = "ExportFailureNotice"
    payload: ExportFailureNoticePayload


class EventRefused(Envelope):
    event_type: Literal["EventRefused"] = "EventRefused"
    payload: EventRefusedPayload


DirectoryEvent = Annotated[
    ApproverUpdated | CompanySettingsUpdated, Field(discriminator="event_type")
]
SubmissionEvent = Annotated[ItemSubmitted | ItemRetrieved, Field(discriminator="event_type")]
DecisionEvent = Annotated[
    ItemAccepted | ItemRejected | ExportRetryRequested, Field(discriminator="event_type")
]
ExportEvent = Annotated[ExportRequested, Field(discriminator="event_type")]
ExportResultEvent = Annotated[ItemExported | ExportAttemptFailed, Field(discriminator="event_type")]
FailedExportEvent = Annotated[ExportFailed, Field(discriminator="event_type")]
StatusEvent = Annotated[ItemStatusChanged, Field(discriminator="event_type")]
NotificationEvent = Annotated[
    RejectionNotice | DailySummary | ExportFailureNotice, Field(discriminator="event_type")
]
DeadLetterEvent = Annotated[EventRefused, Field(discriminator="event_type")]

Event = (
    ApproverUpdated
    | CompanySettingsUpdated
    | ItemSubmitted
    | ItemRetrieved
    | ItemAccepted
    | ItemRejected
    | ExportRetryRequested
    | ExportRequested
    | ItemExported
    | ExportAttemptFailed
    | ExportFailed
    | ItemStatusChanged
    | RejectionNotice
    | DailySummary
    | ExportFailureNotice
    | EventRefused
)

#: Every event model of the contract, by its `event_type`.
EVENT_MODELS: dict[str, type[Envelope]] = {
    model.model_fields["event_type"].default: model
    for model in (
        ApproverUpdated,
        CompanySettingsUpdated,
        ItemSubmitted,
        ItemRetrieved,
        ItemAccepted,
        ItemRejected,
        ExportRetryRequested,
        ExportRequested,
        ItemExported,
        ExportAttemptFailed,
        ExportFailed,
        ItemStatusChanged,
        RejectionNotice,
        DailySummary,
        ExportFailureNotice,
        EventRefused,
    )
}

__all__ = ["EVENT_MODELS", "SCHEMA_VERSION", "Envelope", "Event", "ItemEvent", "Snapshot"]
