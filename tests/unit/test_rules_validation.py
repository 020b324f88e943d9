"""Send-time rules (every broken rule listed) and accept-time rules per item type."""

from __future__ import annotations

from typing import Any

import pytest

from consumers.dev import samples as se
from pipeline.rules.validation import send_refusals
from tests.support.processor import Harness
from tests.support.rules import directory, event, run, types
from topics.limits import REASON_CHARS
from topics.payloads import ItemStatus

S = ItemStatus


def refused_reasons(raw: dict[str, Any], **company: Any) -> list[str]:
    state, (outcome,) = run([event(raw, 0)], directory(**company))
    assert state is not None
    status = outcome.events[0].payload
    if state.status is S.SEND_REFUSED:
        assert status.status is S.SEND_REFUSED and status.reasons
        return list(status.reasons)
    assert state.status is S.READY_TO_EXPORT
    return []


def test_valid_samples_enter_the_queue() -> None:
    for raw in (
        se.project_submitted(),
        se.commitment_submitted(),
        se.cco_submitted(),
        se.pcco_submitted(),
    ):
        assert refused_reasons(raw) == []


def test_project_lists_every_broken_rule() -> None:
    reasons = refused_reasons(
        se.project_submitted(
            active=False, division=None, customer="", price_type=None, taxable=None
        )
    )
    assert len(reasons) == 5
    assert any("active" in r for r in reasons)
    for field in ("division", "customer", "price_type", "taxable"):
        assert any(field in r for r in reasons)


def test_commitment_rules() -> None:
    raw = se.commitment_submitted(erp_vendor_id=None, number="SC-2000-LONG", status="draft")
    raw["payload"]["snapshot"]["line_items"][0].pop("erp_cost_code")
    reasons = refused_reasons(raw)
    assert len(reasons) == 4
    assert any("approved" in r for r in reasons)
    assert any("erp_vendor_id" in r for r in reasons)
    assert any("ERP cost code" in r for r in reasons)
    assert any("number" in r and "10" in r for r in reasons)


def test_cco_rules() -> None:
    raw = se.cco_submitted(title="x" * 31, status="pending")
    raw["payload"]["number"] = "CCO-0000000001"
    raw["payload"]["snapshot"]["commitment"]["erp_synced"] = False
    raw["payload"]["snapshot"]["line_items"][0].pop("erp_cost_code")
    reasons = refused_reasons(raw)
    assert len(reasons) == 5
    assert any("title" in r and "30" in r for r in reasons)
    assert any("number" in r and "12" in r for r in reasons)
    assert any("commitment must be synced" in r for r in reasons)


def test_pcco_rules() -> None:
    raw = se.pcco_submitted(billing_item_code="BI-01234567", status="draft")
    snap = raw["payload"]["snapshot"]
    snap.pop("date")
    snap["prime_contract"]["erp_synced"] = False
    snap["line_items"][0].pop("associated_prime_line_item")
    reasons = refused_reasons(raw, pcco_export_enabled=False)
    assert len(reasons) == 6
    assert any("billing_item_code" in r and "10" in r for r in reasons)
    assert any("PCCO export" in r for r in reasons)
    assert any("pli-1" in r for r in reasons)


def test_pcco_billing_code_of_11_chars_alone() -> None:
    assert refused_reasons(se.pcco_submitted(billing_item_code="BI-01234567")) == [
        "billing_item_code must be at most 10 characters (is 11)"
    ]


def _broken_everywhere() -> dict[str, Any]:
    """A PCCO breaking many rules at once: hundreds of line items without their prime line
    item, and a status whose quoted value alone is near the 2000-character limit."""
    raw = se.pcco_submitted(billing_item_code="B" * 2000, status="s" * 2000)
    raw["payload"]["snapshot"]["line_items"] = [
        {"id": f"pcco-line-item-{n:04d}", "description": "Stone", "amount": "1.00"}
        for n in range(400)
    ]
    return raw


def test_a_refusal_of_many_problems_keeps_each_reason_within_the_limit_with_a_marker() -> None:
    raw = _broken_everywhere()
    reasons = send_refusals(event(raw), directory().settings("acme-builders"))
    assert reasons and all(len(r) <= REASON_CHARS for r in reasons)
    (missing,) = [r for r in reasons if "associated prime contract line item" in r]
    listed = [i for i in range(400) if f"pcco-line-item-{i:04d}" in missing]
    assert listed == list(range(len(listed))) and 0 < len(listed) < 400
    assert missing.endswith(f"… and {400 - len(listed)} more line items)")
    (status,) = [r for r in reasons if r.startswith("status must be approved")]
    assert status.endswith("more characters)")


def test_such_a_submission_is_still_send_refused_with_every_reason() -> None:
    reasons = refused_reasons(_broken_everywhere())
    assert len(reasons) == 3  # status, billing item code, line items
    assert all(len(r) <= REASON_CHARS for r in reasons)


async def test_the_processor_publishes_that_send_refused_status() -> None:
    (status,) = await Harness().send("erp.submissions", _broken_everywhere())
    assert status.event_type == "ItemStatusChanged" and status.payload.status == "send_refused"
    assert any(r.endswith("more line items)") for r in status.payload.reasons)


def _accept(
    submitted: dict[str, Any], item: tuple[str, str], fields: dict[str, Any], **company: Any
) -> Any:
    d = directory(**company)
    state, outcomes = run([event(submitted, 0), event(se.accepted(*item, **fields), 5)], d)
    return state, outcomes[-1]


def test_project_accept_exports_job_id_and_template() -> None:
    _, outcome = _accept(
        se.project_submitted(), ("project", "prj-100"), {"erp_job_id": "J-1", "job_template": "T"}
    )
    assert types(outcome) == ["ItemStatusChanged", "ExportRequested"]
    export = outcome.events[1].payload
    assert export.accept_fields.erp_job_id == "J-1" and export.submission_version == 1


def test_custom_cco_id_is_required_when_enabled() -> None:
    state, outcome = _accept(
        se.cco_submitted(),
        ("commitment_change_order", "cco-300"),
        {"change_order_date": "2026-11-21"},
        custom_cco_id_enabled=True,
    )
    assert types(outcome) == ["EventRefused"]
    assert outcome.events[0].payload.stage == "business_rule"
    assert "erp_change_order_id" in outcome.events[0].payload.error
    assert state.status is S.READY_TO_EXPORT


def test_custom_cco_id_not_needed_when_disabled() -> None:
    _, outcome = _accept(
        se.cco_submitted(),
        ("commitment_change_order", "cco-300"),
        {"change_order_date": "2026-11-21"},
    )
    assert types(outcome) == ["ItemStatusChanged", "ExportRequested"]


def test_a_custom_cco_id_is_refused_when_the_company_has_the_feature_off() -> None:
    """Otherwise the ERP would number the change order from its number and the id the
    approver typed would be silently ignored (#19)."""
    state, outcome = _accept(
        se.cco_submitted(),
        ("commitment_change_order", "cco-300"),
        {"change_order_date": "2026-11-21", "erp_change_order_id": "CO-17"},
    )
    assert types(outcome) == ["EventRefused"]
    assert outcome.events[0].payload.stage == "business_rule"
    assert "custom CCO ids turned off" in outcome.events[0].payload.error
    assert state.status is S.READY_TO_EXPORT


def test_a_custom_cco_id_is_exported_when_the_company_has_the_feature_on() -> None:
    _, outcome = _accept(
        se.cco_submitted(),
        ("commitment_change_order", "cco-300"),
        {"change_order_date": "2026-11-21", "erp_change_order_id": "CO-17"},
        custom_cco_id_enabled=True,
    )
    assert types(outcome) == ["ItemStatusChanged", "ExportRequested"]
    assert outcome.events[1].payload.accept_fields.erp_change_order_id == "CO-17"


def test_a_pcco_is_not_exported_once_the_company_turned_pcco_export_off() -> None:
    """The switch is honoured at accept, not only at send time (#19)."""
    d = directory()
    accept = se.accepted("prime_contract_change_order", "pcco-400")
    state, outcomes = run([event(se.pcco_submitted(), 0)], d)
    d.apply(event(se.company_settings(pcco_export_enabled=False), 3))
    state, outcomes = run([event(accept, 5)], d, state)
    assert types(outcomes[-1]) == ["EventRefused"]
    assert "PCCO export turned off" in outcomes[-1].events[0].payload.error
    assert state is not None and state.status is S.READY_TO_EXPORT


def test_pcco_transaction_date_defaults_to_the_decision_date() -> None:
    _, outcome = _accept(se.pcco_submitted(), ("prime_contract_change_order", "pcco-400"), {})
    assert str(outcome.events[1].payload.accept_fields.transaction_date) == "2026-11-21"


@pytest.mark.parametrize(
    ("timezone", "day"),
    [("America/Chicago", "2026-11-21"), ("UTC", "2026-11-22"), ("Asia/Tokyo", "2026-11-22")],
)
def test_pcco_transaction_date_is_the_decision_day_in_the_company_timezone(
    timezone: str, day: str
) -> None:
    """An accept at 18:30 in Chicago (00:30 UTC the next day) is dated that evening's day,
    not the next UTC day (#19)."""
    d = directory(timezone=timezone)
    accept = se.accepted("prime_contract_change_order", "pcco-400")
    _, outcomes = run([event(se.pcco_submitted(), 0), event(accept, 9 * 60 + 30)], d)
    assert str(outcomes[-1].events[1].payload.accept_fields.transaction_date) == day


@pytest.mark.parametrize(
    ("item", "fields"),
    [
        (("project", "prj-100"), {"erp_job_id": "J-1"}),
        (("commitment_change_order", "cco-300"), {}),
    ],
)
def test_schema_requires_accept_fields(item: tuple[str, str], fields: dict[str, Any]) -> None:
    from topics import SchemaError

    with pytest.raises(SchemaError):
        event(se.accepted(*item, **fields))


def test_rejection_notice_goes_to_creator_or_sender() -> None:
    creator = {"user_id": "u-cal", "email": "cal.creator@acme.example", "name": "Cal"}
    _, outcomes = run(
        [
            event(se.commitment_submitted(created_by=creator), 0),
            event(se.rejected("commitment", "sc-200", "wrong vendor"), 5),
        ]
    )
    notice = outcomes[-1].events[1].payload
    assert notice.to == creator["email"] and notice.reason == "wrong vendor"
    assert notice.rejected_by.user_id == se.APPROVER["user_id"]
    _, outcomes = run(
        [
            event(se.project_submitted(), 0, created_by=creator),
            event(se.rejected("project", "prj-100", "no"), 5),
        ]
    )
    assert outcomes[-1].events[1].payload.to == se.SENDER["email"]
