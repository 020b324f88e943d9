"""Driver errors become the port's errors: refused writes are permanent, reaching the ERP is not."""

from __future__ import annotations

import psycopg
from psycopg import errors

from consumers.export.port import PermanentErpError, TransientErpError
from consumers.export.spectrum.adapter import classify


def test_constraint_and_data_errors_are_permanent_with_the_erp_message() -> None:
    for error, code in (
        (errors.UniqueViolation("duplicate key value"), "unique_violation"),
        (errors.ForeignKeyViolation("not present"), "foreign_key_violation"),
        (errors.StringDataRightTruncation("value too long"), "string_data_right_truncation"),
    ):
        wrapped = classify(error)
        assert isinstance(wrapped, PermanentErpError) and not wrapped.retryable
        assert wrapped.code == code
        assert wrapped.message == str(error)


def test_connection_serialization_and_deadlock_errors_are_transient() -> None:
    for error in (
        psycopg.OperationalError("connection refused"),
        errors.SerializationFailure("could not serialize access"),
        errors.DeadlockDetected("deadlock detected"),
        TimeoutError(),
        OSError("reset"),
    ):
        wrapped = classify(error)
        assert isinstance(wrapped, TransientErpError) and wrapped.retryable
