"""Send-time and accept-time rules per item type (Spectrum profile); pure functions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Protocol
from zoneinfo import ZoneInfo

from topics import Envelope
from topics.events import ItemAccepted, ItemSubmitted
from topics.limits import REASON_CHARS, listing, truncate
from topics.payloads import (
    AcceptFields,
    CommitmentChangeOrderAcceptFields,
    CommitmentChangeOrderSnapshot,
    CommitmentSnapshot,
    CompanySettingsUpdatedPayload,
    ItemType,
    PrimeContractChangeOrderAcceptFields,
    PrimeContractChangeOrderSnapshot,
    ProjectSnapshot,
)


class CostedLine(Protocol):
    """A line item as the cost-code rule sees it."""

    @property
    def erp_cost_code(self) -> str | None: ...


SendRule = Callable[[ItemSubmitted, CompanySettingsUpdatedPayload], list[str]]


def _approved(event: ItemSubmitted) -> list[str]:
    status = event.payload.status
    return [] if status == "approved" else [f"status must be approved (is {status!r})"]


def _longer(what: str, value: str | None, limit: int) -> list[str]:
    return (
        [f"{what} must be at most {limit} characters (is {len(value)})"]
        if (value is not None and len(value) > limit)
        else []
    )


def project_rules(event: ItemSubmitted, _: CompanySettingsUpdatedPayload) -> list[str]:
    """A project must be active and carry Division, Customer, Price Type and Taxable."""
    snap = event.payload.snapshot
    assert isinstance(snap, ProjectSnapshot)
    reasons = [] if snap.active else ["project must be active"]
    for label, value in (
        ("division", snap.division),
        ("customer", snap.customer),
        ("price_type", snap.price_type),
        ("taxable", snap.taxable),
    ):
        if value is None or (isinstance(value, str) and not value.strip()):
            reasons.append(f"{label} is required")
    return reasons


def _costed(lines: Sequence[CostedLine]) -> list[str]:
    """Spectrum needs a cost code to post a line against: at least one line must carry one."""
    if any(line.erp_cost_code for line in lines):
        return []
    return ["at least one line item must have an ERP cost code"]


def commitment_rules(event: ItemSubmitted, _: CompanySettingsUpdatedPayload) -> list[str]:
    """Approved; vendor linked to the ERP; a line with an ERP cost code; number <= 10."""
    snap = event.payload.snapshot
    assert isinstance(snap, CommitmentSnapshot)
    reasons = _approved(event)
    if not snap.vendor.erp_vendor_id:
        reasons.append("vendor must be linked to the ERP (erp_vendor_id)")
    reasons += _costed(snap.line_items)
    return reasons + _longer("number", event.payload.number, 10)


def cco_rules(event: ItemSubmitted, _: CompanySettingsUpdatedPayload) -> list[str]:
    """Approved; commitment synced; a line with an ERP cost code; number <= 12; title <= 30."""
    snap = event.payload.snapshot
    assert isinstance(snap, CommitmentChangeOrderSnapshot)
    reasons = _approved(event)
    if not snap.commitment.erp_synced:
        reasons.append("its commitment must be synced to the ERP")
    reasons += _costed(snap.line_items)
    return (
        reasons
        + _longer("number", event.payload.number, 12)
        + _longer("title", event.payload.title, 30)
    )


def pcco_rules(event: ItemSubmitted, settings: CompanySettingsUpdatedPayload) -> list[str]:
    """Approved; date; billing item code <= 10; prime contract synced; lines associated; enabled."""
    snap = event.payload.snapshot
    assert isinstance(snap, PrimeContractChangeOrderSnapshot)
    reasons = _approved(event)
    if snap.date is None:
        reasons.append("date is required")
    reasons += _longer("billing_item_code", snap.billing_item_code, 10)
    if not snap.prime_contract.erp_synced:
        reasons.append("its prime contract must be synced to the ERP")
    unassociated = [line.id for line in snap.line_items if not line.associated_prime_line_item]
    if unassociated:
        start = "every line item needs an associated prime contract line item (missing on "
        ids = listing(unassociated, REASON_CHARS - len(start) - 1, noun="line items")
        reasons.append(f"{start}{ids})")
    if not settings.pcco_export_enabled:
        reasons.append("the company has PCCO export turned off")
    return reasons


SEND_RULES: dict[ItemType, SendRule] = {
    ItemType.PROJECT: project_rules,
    ItemType.COMMITMENT: commitment_rules,
    ItemType.COMMITMENT_CHANGE_ORDER: cco_rules,
    ItemType.PRIME_CONTRACT_CHANGE_ORDER: pcco_rules,
}


def send_refusals(event: ItemSubmitted, settings: CompanySettingsUpdatedPayload) -> list[str]:
    """Every send-time rule the submission breaks (empty: it may enter the queue).

    Each reason is at most `REASON_CHARS` long, as `ItemStatusChanged.reasons` takes them:
    a long one is cut with a marker saying how much was left out, and a list of offending
    line items ends in "… and N more line items".
    """
    return [
        truncate(reason, REASON_CHARS) for reason in SEND_RULES[event.item.type](event, settings)
    ]


def accept_fields(event: ItemAccepted, settings: CompanySettingsUpdatedPayload) -> AcceptFields:
    """The accept fields to export, with defaults filled in; ValueError names a broken rule.

    The schema already requires the project's Job ID and template and the CCO's change order
    date; what depends on the company or on the event's time is decided here:

    - a CCO's `erp_change_order_id` is required when the company has custom CCO ids on, and
      refused when it has them off (Procore shows the Spectrum CCO ID field only with the
      feature on; without it the ERP numbers the change order from its number, so an id given
      anyway would be silently ignored);
    - a PCCO is exported only while the company has PCCO export on (checked at send time too,
      but the switch may be turned off while it waits);
    - a PCCO's `transaction_date` defaults to the day the decision was made in the company's
      timezone (`CompanySettingsUpdated.timezone`): an evening accept in Chicago is dated that
      day, not the next UTC day.
    """
    fields = event.payload
    if isinstance(fields, CommitmentChangeOrderAcceptFields):
        if settings.custom_cco_id_enabled and not fields.erp_change_order_id:
            raise ValueError("erp_change_order_id is required: the company uses custom CCO ids")
        if not settings.custom_cco_id_enabled and fields.erp_change_order_id:
            raise ValueError(
                "erp_change_order_id must not be given: the company has custom CCO ids turned "
                "off, so the ERP numbers the change order from its number"
            )
    if isinstance(fields, PrimeContractChangeOrderAcceptFields):
        if not settings.pcco_export_enabled:
            raise ValueError(
                "the company has PCCO export turned off: a prime contract change order cannot "
                "be exported (turn it on, or reject the item)"
            )
        if fields.transaction_date is None:
            return fields.model_copy(update={"transaction_date": local_date(event, settings)})
    return fields


def local_date(event: Envelope, settings: CompanySettingsUpdatedPayload) -> dt.date:
    """The calendar day of the event's `occurred_at` in the company's timezone."""
    return event.occurred_at.astimezone(ZoneInfo(settings.timezone)).date()
