"""`ExportRequested` events built from the sample submissions, as the processor publishes them."""

from __future__ import annotations

import uuid
from typing import Any

from consumers.dev import samples as se
from topics.events import ExportRequested
from topics.specs import EXPORTS


def export_requested(
    submitted: dict[str, Any],
    accept_fields: dict[str, Any],
    *,
    export_id: str | None = None,
    attempt: int = 1,
    company: str = se.COMPANY,
) -> dict[str, Any]:
    """The export of an accepted sample submission (a JSON-ready dict)."""
    payload = submitted["payload"]
    item = submitted["item"]
    return se.envelope(
        "ExportRequested",
        item=(item["type"], item["id"]),
        actor=se.APPROVER,
        company=company,
        export_id=export_id or str(uuid.uuid4()),
        submission_version=1,
        attempt=attempt,
        created_by=payload["created_by"],
        sent_by=se.SENDER,
        accepted_by=se.APPROVER,
        number=payload["number"],
        title=payload["title"],
        amount=payload["amount"],
        project=payload["project"],
        snapshot=payload["snapshot"],
        accept_fields=accept_fields,
    )


def project_export(
    project_id: str, job_id: str, *, template: str = "COMM", company: str = se.COMPANY, **kw: Any
) -> dict[str, Any]:
    """A project accepted with `job_id` from `template`; the project is its own project ref."""
    submitted = se.project_submitted(project_id)
    submitted["payload"]["project"] = {"id": project_id, "name": "Riverside Medical Office"}
    return export_requested(
        submitted, {"erp_job_id": job_id, "job_template": template}, company=company, **kw
    )


def commitment_export(
    commitment_id: str,
    project_id: str,
    *,
    vendor: str | None = "V1001",
    number: str = "SC-200",
    company: str = se.COMPANY,
    **kw: Any,
) -> dict[str, Any]:
    """A subcontract on `project_id` with vendor `vendor` (its ERP vendor id)."""
    submitted = se.commitment_submitted(commitment_id, erp_vendor_id=vendor, number=number)
    submitted["payload"]["project"] = {"id": project_id, "name": "Riverside Medical Office"}
    return export_requested(submitted, {}, company=company, **kw)


def model(event: dict[str, Any]) -> ExportRequested:
    """The event as the exporter will decode it."""
    import json

    from topics import decode

    decoded: ExportRequested = decode(json.dumps(event), EXPORTS)
    return decoded
