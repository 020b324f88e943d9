"""Accepted items → ERP documents, with no I/O."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from consumers.dev import samples as se
from consumers.export.port import PermanentErpError
from consumers.export.spectrum.mapping import (
    ArChangeRequest,
    ArLine,
    ChangeOrder,
    Commitment,
    Job,
    to_document,
)
from tests.support.events import commitment_export, export_model, export_requested, project_export


def test_a_project_becomes_a_job_from_the_chosen_template() -> None:
    job = to_document(export_model(project_export("prj-1", "RMO100", template="TI")))
    assert job == Job(
        company_id=se.COMPANY,
        job_number="RMO100",
        template_code="TI",
        description="Riverside Medical Office",
        upstream_project_id="prj-1",
        contract_amount=Decimal("4500000.00"),
        address="12 River Rd, Austin TX",
        customer="Riverside Health",
        division="Commercial",
        price_type="Lump Sum",
        taxable=True,
    )


def test_a_commitment_goes_to_its_project_job_with_the_erp_vendor_and_cost_codes() -> None:
    commitment = to_document(export_model(commitment_export("sc-1", "prj-1", vendor="V1001")))
    assert isinstance(commitment, Commitment)
    assert (commitment.commitment_id, commitment.commitment_type) == ("SC-200", "subcontract")
    assert (commitment.upstream_project_id, commitment.vendor_code) == ("prj-1", "V1001")
    assert [(line.phase_code, line.amount) for line in commitment.lines] == [
        ("03-300", Decimal("250000.00"))
    ]


def test_a_commitment_without_an_erp_vendor_fails_permanently() -> None:
    with pytest.raises(PermanentErpError) as caught:
        to_document(export_model(commitment_export("sc-1", "prj-1", vendor=None)))
    assert caught.value.code == "vendor_not_linked"
    assert not caught.value.retryable


def test_a_cco_uses_the_custom_id_when_given_else_its_number() -> None:
    fields = {"change_order_date": "2026-11-21"}
    plain = to_document(export_model(export_requested(se.cco_submitted("cco-1"), fields)))
    custom = to_document(
        export_model(
            export_requested(se.cco_submitted("cco-1"), {**fields, "erp_change_order_id": "CO-17"})
        )
    )
    assert isinstance(plain, ChangeOrder) and isinstance(custom, ChangeOrder)
    assert (plain.change_order_id, custom.change_order_id) == ("CCO-001", "CO-17")
    assert plain.upstream_commitment_id == "sc-200"
    assert plain.change_order_date == dt.date(2026, 11, 21)
    assert plain.title == "Added footing depth"


def test_a_pcco_becomes_an_ar_change_request_dated_by_the_accept_fields() -> None:
    pcco = se.pcco_submitted("pcco-1")
    dated = to_document(export_model(export_requested(pcco, {"transaction_date": "2026-11-22"})))
    undated = to_document(export_model(export_requested(pcco, {})))
    assert isinstance(dated, ArChangeRequest) and isinstance(undated, ArChangeRequest)
    assert dated.transaction_date == dt.date(2026, 11, 22)
    assert undated.transaction_date == dt.date(2026, 11, 19)  # the PCCO's own date
    assert (dated.billing_item_code, dated.upstream_project_id) == ("BI-010", "prj-100")


def test_what_the_approver_entered_at_accept_reaches_the_erp_document() -> None:
    """A CCO's description and a commitment's details were accepted, then dropped (#19)."""
    cco = to_document(
        export_model(
            export_requested(
                se.cco_submitted("cco-1"),
                {"change_order_date": "2026-11-21", "description": "Footings 600 mm deeper"},
            )
        )
    )
    commitment = export_model(commitment_export("sc-1", "prj-1"))
    detailed = commitment.model_copy(
        update={
            "payload": commitment.payload.model_copy(
                update={
                    "accept_fields": commitment.payload.accept_fields.model_copy(
                        update={"details": "Retainage 10 %, pay when paid"}
                    )
                }
            )
        }
    )
    assert isinstance(cco, ChangeOrder) and cco.description == "Footings 600 mm deeper"
    assert to_document(detailed).notes == "Retainage 10 %, pay when paid"  # type: ignore[union-attr]


def test_a_pcco_goes_to_the_erp_with_its_lines_and_their_prime_contract_line_items() -> None:
    """The export wrote the PCCO without its lines (#19)."""
    submitted = se.pcco_submitted("pcco-1")
    submitted["payload"]["snapshot"]["line_items"].append(
        {
            "id": "pli-2",
            "description": "Lobby lighting",
            "amount": "-1500.50",
            "associated_prime_line_item": "PL-9",
        }
    )
    pcco = to_document(export_model(export_requested(submitted, {})))
    assert isinstance(pcco, ArChangeRequest)
    assert pcco.lines == (
        ArLine("PL-7", "Lobby stone", Decimal("48000.00")),
        ArLine("PL-9", "Lobby lighting", Decimal("-1500.50")),
    )
