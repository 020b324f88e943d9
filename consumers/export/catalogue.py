"""The ERP error catalogue: the few stable codes and plain messages an export failure is told in.

What people read in Failed to Export, in the failure e-mails and in the metrics' error class is
one of these codes and its message, never a database's text ("duplicate key value violates
unique constraint ..."); the ERP's own answer is kept beside it (`erp_response`). Each code is
either permanent (the item itself must change: not retried until someone asks) or transient
(retried with backoff, a bounded number of times, by the exporter).

The codes are ERP-neutral; each ERP adapter maps its own errors onto them
(`consumers.export.spectrum.errors` for the reference ERP).
"""

from __future__ import annotations

from enum import StrEnum

from consumers.export.port import ErpError, PermanentErpError, TransientErpError


class ErrorCode(StrEnum):
    """A failure's `error_code` on erp.export-results, erp.failed-to-export and in metrics."""

    #: The Job ID is already a job in the ERP (another project's, or this project's already).
    DUPLICATE_JOB = "duplicate_job"
    #: The commitment, change order or AR change request number is already used in the ERP.
    DUPLICATE_RECORD = "duplicate_record"
    #: The job template chosen at accept does not exist in the ERP.
    UNKNOWN_TEMPLATE = "unknown_template"
    #: The vendor the commitment names does not exist in the ERP.
    UNKNOWN_VENDOR = "unknown_vendor"
    #: A line's ERP cost code is not a phase of the job.
    UNKNOWN_COST_CODE = "unknown_cost_code"
    #: A value is longer than the ERP's field takes.
    VALUE_TOO_LONG = "value_too_long"
    #: The project's job is not in the ERP (yet): transient while it may still be exported.
    JOB_NOT_EXPORTED = "job_not_exported"
    #: The change order's commitment is not in the ERP (yet): transient, like the job.
    COMMITMENT_NOT_EXPORTED = "commitment_not_exported"
    #: The commitment's vendor has no ERP vendor id: fix the vendor upstream and re-send.
    VENDOR_NOT_LINKED = "vendor_not_linked"
    #: Any other refusal of the item by the ERP (its message is the ERP's own).
    ERP_REFUSED = "erp_refused"
    #: The ERP could not be reached or did not answer in time.
    ERP_UNAVAILABLE = "erp_unavailable"


#: Codes retried by the exporter (bounded by EXPORTER_MAX_ATTEMPTS); every other one is final.
TRANSIENT = frozenset(
    {ErrorCode.JOB_NOT_EXPORTED, ErrorCode.COMMITMENT_NOT_EXPORTED, ErrorCode.ERP_UNAVAILABLE}
)


def erp_error(code: ErrorCode, message: str, *, response: str | None = None) -> ErpError:
    """The port's error for a catalogue entry: transient or permanent as the catalogue says."""
    kind = TransientErpError if code in TRANSIENT else PermanentErpError
    return kind(code.value, message, response=response)


__all__ = ["TRANSIENT", "ErrorCode", "erp_error"]
