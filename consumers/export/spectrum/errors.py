"""The reference ERP's errors in the catalogue's words: which constraint refused which value.

PostgreSQL names the table, the constraint and the key columns of a refused write
(`diag.table_name`, `diag.constraint_name`, the detail "Key (cols)=(values) ..."); the values
come from the document being written, so a message names the Job ID, template, vendor or cost
code the approver or the sender can fix. Whatever is not recognized is still permanent or
transient as before, under `erp_refused` or `erp_unavailable` with the ERP's own text.
"""

from __future__ import annotations

import re

import psycopg

from consumers.export.catalogue import ErrorCode, erp_error
from consumers.export.port import ErpError
from consumers.export.spectrum.mapping import (
    ArChangeRequest,
    ChangeOrder,
    Commitment,
    ErpDocument,
    Job,
)

#: "Key (company_id, job_number, phase_code)=(acme, J-1, 99-999) is not present in table ..."
_KEY = re.compile(r"Key \((?P<columns>[^)]*)\)=\((?P<values>.*)\) (?:is not present|already)")
#: "value too long for type character varying(30)"
_LENGTH = re.compile(r"character varying\((\d+)\)")

#: Spectrum's field lengths the reference ERP enforces, by document type: (label, attribute, n).
_LIMITS: dict[type, tuple[tuple[str, str, int], ...]] = {
    Job: (("Job ID", "job_number", 10), ("job template", "template_code", 10)),
    Commitment: (("commitment number", "commitment_id", 10), ("vendor", "vendor_code", 10)),
    ChangeOrder: (("change order ID", "change_order_id", 12), ("change order title", "title", 30)),
    ArChangeRequest: (
        ("change request number", "request_number", 20),
        ("billing item code", "billing_item_code", 10),
    ),
}

_NOUN = {
    Job: "job",
    Commitment: "commitment",
    ChangeOrder: "change order",
    ArChangeRequest: "AR change request",
}


def _raw(exc: BaseException) -> str:
    """The driver's own text of the error: primary message and detail."""
    diag = getattr(exc, "diag", None)
    message = (diag.message_primary if diag is not None else None) or str(exc).strip()
    detail = diag.message_detail if diag is not None else None
    return f"{message}. {detail}" if detail else message or type(exc).__name__


def _key(exc: BaseException) -> tuple[list[str], str]:
    """The key columns and the raw values text of a constraint error's detail."""
    diag = getattr(exc, "diag", None)
    match = _KEY.search((diag.message_detail if diag is not None else None) or "")
    if match is None:
        return [], ""
    return [c.strip() for c in match["columns"].split(",")], match["values"]


def _number(document: ErpDocument) -> str:
    if isinstance(document, Job):
        return document.job_number
    if isinstance(document, Commitment):
        return document.commitment_id
    if isinstance(document, ChangeOrder):
        return document.change_order_id
    return document.request_number


def _duplicate(exc: BaseException, document: ErpDocument) -> tuple[ErrorCode, str]:
    columns, _ = _key(exc)
    upstream = any(c in ("upstream_project_id", "upstream_id") for c in columns)
    if isinstance(document, Job):
        if upstream:
            return ErrorCode.DUPLICATE_JOB, (
                f"Project {document.upstream_project_id} already has a job in Spectrum"
            )
        return ErrorCode.DUPLICATE_JOB, f"Job ID {document.job_number} already exists in Spectrum"
    noun = _NOUN[type(document)]
    if upstream:
        return ErrorCode.DUPLICATE_RECORD, f"This item is already a {noun} in Spectrum"
    return ErrorCode.DUPLICATE_RECORD, (
        f"The {noun} number {_number(document)} is already used in Spectrum"
    )


def _missing(exc: BaseException, document: ErpDocument) -> tuple[ErrorCode, str] | None:
    columns, values = _key(exc)
    if "template_code" in columns and isinstance(document, Job):
        return ErrorCode.UNKNOWN_TEMPLATE, (
            f"Job template {document.template_code} does not exist in Spectrum"
        )
    if "vendor_code" in columns and isinstance(document, Commitment):
        return ErrorCode.UNKNOWN_VENDOR, (
            f"Vendor {document.vendor_code} does not exist in Spectrum"
        )
    if columns[-1:] == ["phase_code"]:
        # company_id and job_number never hold ", ": what follows them is the cost code
        parts = values.split(", ", len(columns) - 1)
        code = parts[-1] if len(parts) == len(columns) else "of a line"
        job = parts[1] if len(parts) == len(columns) else "the job"
        return ErrorCode.UNKNOWN_COST_CODE, (
            f"Cost code {code} is not a phase of job {job} in Spectrum"
        )
    return None


def _too_long(exc: BaseException, document: ErpDocument) -> tuple[ErrorCode, str]:
    match = _LENGTH.search(_raw(exc))
    limit = int(match[1]) if match else None
    for label, attribute, size in _LIMITS.get(type(document), ()):
        value = getattr(document, attribute)
        if value is not None and len(value) > size and limit in (None, size):
            return ErrorCode.VALUE_TOO_LONG, (
                f"The {label} {value!r} is {len(value)} characters; Spectrum takes at most {size}"
            )
    takes = f" (at most {limit} characters)" if limit else ""
    return ErrorCode.VALUE_TOO_LONG, f"A value is longer than Spectrum takes{takes}"


def describe(exc: BaseException, document: ErpDocument | None = None) -> ErpError:
    """The catalogue's error for a driver error raised while writing `document` (None: while
    writing no document, e.g. the ledger alone; refusals then keep the ERP's own text).

    Refused writes (constraint and data errors) are permanent, named by what to fix; anything
    about reaching the ERP (connection loss, timeouts, serialization failures, deadlocks, a
    missing table while the ERP is set up) is `erp_unavailable`, retried. The driver's text is
    kept as the error's `response`.
    """
    raw = _raw(exc)
    if document is None and isinstance(exc, psycopg.IntegrityError | psycopg.DataError):
        code, message = ErrorCode.ERP_REFUSED, raw
    elif document is None:
        code, message = ErrorCode.ERP_UNAVAILABLE, f"Spectrum could not be reached: {raw}"
    elif isinstance(exc, psycopg.errors.UniqueViolation):
        code, message = _duplicate(exc, document)
    elif isinstance(exc, psycopg.errors.ForeignKeyViolation):
        code, message = _missing(exc, document) or (ErrorCode.ERP_REFUSED, raw)
    elif isinstance(exc, psycopg.errors.StringDataRightTruncation):
        code, message = _too_long(exc, document)
    elif isinstance(exc, psycopg.IntegrityError | psycopg.DataError):
        code, message = ErrorCode.ERP_REFUSED, raw
    else:
        code, message = ErrorCode.ERP_UNAVAILABLE, f"Spectrum could not be reached: {raw}"
    return erp_error(code, message, response=str(exc).strip() or raw)


__all__ = ["describe"]
