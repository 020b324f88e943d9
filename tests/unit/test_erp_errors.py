"""Driver errors become the catalogue's errors: what to fix, in words people read (#19)."""

from __future__ import annotations

import dataclasses
from typing import Any

import psycopg
import pytest
from psycopg import errors

from consumers.export.catalogue import ErrorCode
from consumers.export.port import PermanentErpError, TransientErpError
from consumers.export.spectrum.adapter import classify
from consumers.export.spectrum.mapping import to_document
from tests.support.events import commitment_export, export_model, project_export

JOB = to_document(export_model(project_export("prj-1", "J-100", template="TI")))
COMMITMENT = to_document(export_model(commitment_export("sc-1", "prj-1", vendor="V9")))


@dataclasses.dataclass
class Diag:
    """The parts of `psycopg.errors.Diagnostic` the catalogue reads."""

    message_primary: str | None = None
    message_detail: str | None = None


def _error(kind: type[psycopg.Error], primary: str, detail: str | None = None) -> Any:
    """A driver error as PostgreSQL raises it, its diagnostics included."""
    diag = Diag(primary, detail)
    return type(kind.__name__, (kind,), {"diag": property(lambda self: diag)})(primary)


@pytest.mark.parametrize(
    ("exc", "document", "code", "message"),
    [
        (
            _error(
                errors.UniqueViolation,
                'duplicate key value violates unique constraint "jobs_pkey"',
                "Key (company_id, job_number)=(acme, J-100) already exists.",
            ),
            JOB,
            ErrorCode.DUPLICATE_JOB,
            "Job ID J-100 already exists in Spectrum",
        ),
        (
            _error(
                errors.UniqueViolation,
                'duplicate key value violates unique constraint "jobs_upstream_project_key"',
                "Key (company_id, upstream_project_id)=(acme, prj-1) already exists.",
            ),
            JOB,
            ErrorCode.DUPLICATE_JOB,
            "Project prj-1 already has a job in Spectrum",
        ),
        (
            _error(
                errors.ForeignKeyViolation,
                'insert or update on table "jobs" violates foreign key constraint',
                "Key (company_id, template_code)=(acme, TI) is not present in table"
                ' "job_templates".',
            ),
            JOB,
            ErrorCode.UNKNOWN_TEMPLATE,
            "Job template TI does not exist in Spectrum",
        ),
        (
            _error(
                errors.ForeignKeyViolation,
                'insert or update on table "commitments" violates foreign key constraint',
                'Key (company_id, vendor_code)=(acme, V9) is not present in table "vendors".',
            ),
            COMMITMENT,
            ErrorCode.UNKNOWN_VENDOR,
            "Vendor V9 does not exist in Spectrum",
        ),
        (
            _error(
                errors.ForeignKeyViolation,
                'insert or update on table "commitment_lines" violates foreign key constraint',
                "Key (company_id, job_number, phase_code)=(acme, J-100, 99-999, ok) is not present"
                ' in table "job_phases".',
            ),
            COMMITMENT,
            ErrorCode.UNKNOWN_COST_CODE,
            "Cost code 99-999, ok is not a phase of job J-100 in Spectrum",
        ),
        (
            _error(
                errors.StringDataRightTruncation, "value too long for type character varying(10)"
            ),
            dataclasses.replace(JOB, job_number="J-1000000000"),  # type: ignore[type-var]
            ErrorCode.VALUE_TOO_LONG,
            "The Job ID 'J-1000000000' is 12 characters; Spectrum takes at most 10",
        ),
    ],
    ids=lambda v: v.value if isinstance(v, ErrorCode) else "",
)
def test_refused_writes_are_permanent_and_say_what_to_fix(
    exc: Exception, document: Any, code: ErrorCode, message: str
) -> None:
    wrapped = classify(exc, document)
    assert isinstance(wrapped, PermanentErpError) and not wrapped.retryable
    assert (wrapped.code, wrapped.message) == (code.value, message)
    assert wrapped.response == str(exc)  # the ERP's own words are kept beside


def test_connection_serialization_and_deadlock_errors_are_transient() -> None:
    for error in (
        psycopg.OperationalError("connection refused"),
        errors.SerializationFailure("could not serialize access"),
        errors.DeadlockDetected("deadlock detected"),
        TimeoutError(),
        OSError("reset"),
    ):
        wrapped = classify(error, JOB)
        assert isinstance(wrapped, TransientErpError) and wrapped.retryable
        assert wrapped.code == ErrorCode.ERP_UNAVAILABLE
        assert wrapped.message.startswith("Spectrum could not be reached")
