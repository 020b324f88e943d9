"""Realistic sample events of a demo company, used by `demo` and by tests."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

COMPANY = "acme-builders"
APPROVER = {"user_id": "u-ana", "email": "ana.approver@acme.example", "name": "Ana Approver"}
VIEWER = {"user_id": "u-vic", "email": "vic.viewer@acme.example", "name": "Vic Viewer"}
SENDER = {"user_id": "u-pat", "email": "pat.pm@acme.example", "name": "Pat Project-Manager"}


def envelope(
    event_type: str,
    *,
    item: tuple[str, str] | None = None,
    actor: dict[str, str] | None = None,
    at: dt.datetime | None = None,
    company: str = COMPANY,
    payload: dict[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """An event as upstream would publish it (a JSON-ready dict).

    Payload fields come as keyword arguments, or as `payload=` when one is named like an
    envelope argument (`item`).
    """
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": (at or dt.datetime.now(dt.UTC)).isoformat().replace("+00:00", "Z"),
        "company_id": company,
        "actor": actor or SENDER,
        "payload": {**(payload or {}), **fields},
    }
    if item is not None:
        event["item"] = {"type": item[0], "id": item[1]}
    return event


def approver_updated(
    person: dict[str, str], *, privileged: bool = True, **kw: Any
) -> dict[str, Any]:
    return envelope(
        "ApproverUpdated",
        actor=APPROVER,
        user_id=person["user_id"],
        email=person["email"],
        name=person["name"],
        erp_tool_permission="admin" if privileged else "read_only",
        can_push_to_accounting=privileged,
        **kw,
    )


def company_settings(**overrides: Any) -> dict[str, Any]:
    return envelope(
        "CompanySettingsUpdated",
        actor=APPROVER,
        **{
            "erp_system": "spectrum",
            "timezone": "America/Chicago",
            "daily_summary_hour": 7,
            "custom_cco_id_enabled": False,
            "pcco_export_enabled": True,
            **overrides,
        },
    )


def _submitted(
    item_type: str,
    item_id: str,
    number: str,
    title: str,
    amount: str,
    snapshot: dict[str, Any],
    **kw: Any,
) -> dict[str, Any]:
    return envelope(
        "ItemSubmitted",
        item=(item_type, item_id),
        created_by=kw.pop("created_by", SENDER),
        number=number,
        title=title,
        status=kw.pop("status", "approved"),
        amount=amount,
        project=kw.pop("project", {"id": "prj-100", "name": "Riverside Medical Office"}),
        snapshot=snapshot,
        **kw,
    )


def project_submitted(item_id: str = "prj-100", **snapshot: Any) -> dict[str, Any]:
    return _submitted(
        "project",
        item_id,
        "RMO-100",
        "Riverside Medical Office",
        "4500000.00",
        {
            "active": True,
            "name": "Riverside Medical Office",
            "project_number": "RMO-100",
            "address": "12 River Rd, Austin TX",
            "division": "Commercial",
            "customer": "Riverside Health",
            "price_type": "Lump Sum",
            "taxable": True,
            **snapshot,
        },
    )


def commitment_submitted(
    item_id: str = "sc-200",
    *,
    erp_vendor_id: str | None = "V1001",
    number: str = "SC-200",
    **kw: Any,
) -> dict[str, Any]:
    vendor: dict[str, Any] = {"id": "ven-1", "name": "Lone Star Concrete"}
    if erp_vendor_id:
        vendor["erp_vendor_id"] = erp_vendor_id
    return _submitted(
        "commitment",
        item_id,
        number,
        "Concrete foundations",
        "250000.00",
        {
            "commitment_type": "subcontract",
            "vendor": vendor,
            "description": "Foundations and slab",
            "line_items": [
                {
                    "id": "li-1",
                    "cost_code": "03-300",
                    "erp_cost_code": "03-300",
                    "description": "Cast-in-place concrete",
                    "amount": "250000.00",
                }
            ],
        },
        **kw,
    )


def cco_submitted(
    item_id: str = "cco-300", *, title: str = "Added footing depth", **kw: Any
) -> dict[str, Any]:
    return _submitted(
        "commitment_change_order",
        item_id,
        "CCO-001",
        title,
        "12500.00",
        {
            "commitment": {"id": "sc-200", "number": "SC-200", "erp_synced": True},
            "vendor": {"id": "ven-1", "name": "Lone Star Concrete", "erp_vendor_id": "V1001"},
            "date_created": "2026-11-20",
            "line_items": [
                {
                    "id": "li-9",
                    "cost_code": "03-300",
                    "erp_cost_code": "03-300",
                    "description": "Deeper footings",
                    "amount": "12500.00",
                }
            ],
        },
        **kw,
    )


def pcco_submitted(
    item_id: str = "pcco-400", *, billing_item_code: str = "BI-010", **kw: Any
) -> dict[str, Any]:
    return _submitted(
        "prime_contract_change_order",
        item_id,
        "PCCO-001",
        "Owner upgrade: lobby finishes",
        "48000.00",
        {
            "prime_contract": {"id": "pc-1", "erp_synced": True},
            "date": "2026-11-19",
            "billing_item_code": billing_item_code,
            "line_items": [
                {
                    "id": "pli-1",
                    "description": "Lobby stone",
                    "amount": "48000.00",
                    "associated_prime_line_item": "PL-7",
                }
            ],
        },
        **kw,
    )


def accepted(
    item_type: str, item_id: str, actor: dict[str, str] = APPROVER, **fields: Any
) -> dict[str, Any]:
    return envelope("ItemAccepted", item=(item_type, item_id), actor=actor, **fields)


def rejected(
    item_type: str, item_id: str, reason: str, actor: dict[str, str] = APPROVER
) -> dict[str, Any]:
    return envelope("ItemRejected", item=(item_type, item_id), actor=actor, reason=reason)


def retrieved(item_type: str, item_id: str, actor: dict[str, str] = SENDER) -> dict[str, Any]:
    return envelope("ItemRetrieved", item=(item_type, item_id), actor=actor)
