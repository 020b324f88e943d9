"""How an accepted item maps onto ERP records (pure: no I/O, no ERP rules beyond what it needs)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from consumers.export.catalogue import ErrorCode, erp_error
from topics.events import ExportRequested
from topics.payloads import (
    CommitmentAcceptFields,
    CommitmentChangeOrderAcceptFields,
    CommitmentChangeOrderSnapshot,
    CommitmentLine,
    CommitmentSnapshot,
    PrimeContractChangeOrderAcceptFields,
    PrimeContractChangeOrderSnapshot,
    PrimeLine,
    ProjectAcceptFields,
    ProjectSnapshot,
)


@dataclass(frozen=True)
class Line:
    """A cost line: the ERP phase (cost code) it is charged to."""

    phase_code: str
    description: str
    amount: Decimal


@dataclass(frozen=True)
class Job:
    """A project becomes a job, its phases copied from the chosen job template."""

    company_id: str
    job_number: str
    template_code: str
    description: str
    upstream_project_id: str
    contract_amount: Decimal
    address: str | None = None
    customer: str | None = None
    division: str | None = None
    price_type: str | None = None
    taxable: bool | None = None


@dataclass(frozen=True)
class Commitment:
    """A subcontract or purchase order on the job exported for its project."""

    company_id: str
    commitment_id: str
    commitment_type: str
    upstream_project_id: str
    vendor_code: str
    description: str
    amount: Decimal
    upstream_id: str
    lines: tuple[Line, ...]
    #: The approver's accept details, kept as the commitment's notes.
    notes: str | None = None
    #: The project's name, for messages people read.
    project_name: str | None = None


@dataclass(frozen=True)
class ChangeOrder:
    """A subcontract change order against the exported commitment."""

    company_id: str
    upstream_commitment_id: str
    change_order_id: str
    title: str
    change_order_date: dt.date
    amount: Decimal
    upstream_id: str
    lines: tuple[Line, ...]
    #: The description the approver entered at accept.
    description: str | None = None
    #: The commitment's number (SC-200), for messages people read.
    commitment_number: str | None = None


@dataclass(frozen=True)
class ArLine:
    """A line of an AR change request: the prime contract line item it changes."""

    prime_line_item: str
    description: str
    amount: Decimal


@dataclass(frozen=True)
class ArChangeRequest:
    """A prime contract change order becomes an AR change request on the project's job."""

    company_id: str
    upstream_project_id: str
    request_number: str
    billing_item_code: str | None
    description: str
    transaction_date: dt.date
    amount: Decimal
    upstream_id: str
    lines: tuple[ArLine, ...] = ()
    #: The project's name, for messages people read.
    project_name: str | None = None


ErpDocument = Job | Commitment | ChangeOrder | ArChangeRequest


def _lines(items: list[CommitmentLine]) -> tuple[Line, ...]:
    # The ERP knows its own cost codes; an upstream code stands in only where none was mapped.
    return tuple(
        Line(line.erp_cost_code or line.cost_code, line.description, Decimal(line.amount))
        for line in items
    )


def _prime_lines(items: list[PrimeLine]) -> tuple[ArLine, ...]:
    """A PCCO's lines. Each names its associated prime contract line item: the send-time rules
    refuse a PCCO with a line that does not, so one missing here cannot be exported."""
    lines = []
    for line in items:
        if not line.associated_prime_line_item:
            raise erp_error(
                ErrorCode.ERP_REFUSED,
                f"Line {line.id} has no associated prime contract line item",
            )
        lines.append(
            ArLine(line.associated_prime_line_item, line.description, Decimal(line.amount))
        )
    return tuple(lines)


def to_document(request: ExportRequested) -> ErpDocument:
    """The ERP record an `ExportRequested` asks for; raises the catalogue's permanent error
    (`vendor_not_linked`, `erp_refused`) when it cannot be one."""
    p, company, item_id = request.payload, request.company_id, request.item.id
    snapshot, accept = p.snapshot, p.accept_fields
    if isinstance(snapshot, ProjectSnapshot) and isinstance(accept, ProjectAcceptFields):
        return Job(
            company,
            accept.erp_job_id,
            accept.job_template,
            snapshot.name,
            item_id,
            Decimal(p.amount),
            snapshot.address,
            snapshot.customer,
            snapshot.division,
            snapshot.price_type,
            snapshot.taxable,
        )
    if isinstance(snapshot, CommitmentSnapshot) and isinstance(accept, CommitmentAcceptFields):
        if not snapshot.vendor.erp_vendor_id:
            raise erp_error(
                ErrorCode.VENDOR_NOT_LINKED,
                f"Vendor {snapshot.vendor.name!r} is not linked to a Spectrum vendor",
            )
        return Commitment(
            company,
            p.number,
            snapshot.commitment_type,
            p.project.id,
            snapshot.vendor.erp_vendor_id,
            snapshot.description or p.title,
            Decimal(p.amount),
            item_id,
            _lines(snapshot.line_items),
            accept.details,
            p.project.name,
        )
    if isinstance(snapshot, CommitmentChangeOrderSnapshot) and isinstance(
        accept, CommitmentChangeOrderAcceptFields
    ):
        return ChangeOrder(
            company,
            snapshot.commitment.id,
            accept.erp_change_order_id or p.number,
            p.title,
            accept.change_order_date,
            Decimal(p.amount),
            item_id,
            _lines(snapshot.line_items),
            accept.description,
            snapshot.commitment.number,
        )
    if isinstance(snapshot, PrimeContractChangeOrderSnapshot) and isinstance(
        accept, PrimeContractChangeOrderAcceptFields
    ):
        return ArChangeRequest(
            company,
            p.project.id,
            p.number,
            snapshot.billing_item_code,
            p.title,
            accept.transaction_date or snapshot.date or request.occurred_at.date(),
            Decimal(p.amount),
            item_id,
            _prime_lines(snapshot.line_items),
            p.project.name,
        )
    raise erp_error(
        ErrorCode.ERP_REFUSED, f"Cannot export a {request.item.type.value} with these fields"
    )
