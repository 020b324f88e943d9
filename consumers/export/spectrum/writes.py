"""The SQL that writes one ERP document into the reference ERP's `spectrum` schema."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from consumers.export.catalogue import ErrorCode, erp_error
from consumers.export.spectrum.mapping import (
    ArChangeRequest,
    ChangeOrder,
    Commitment,
    ErpDocument,
    Job,
    Line,
)

Conn = AsyncConnection[Any]


async def _one(conn: Conn, query: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
    cursor = await conn.execute(query, params)
    return await cursor.fetchone()


def _named(name: str | None, upstream_id: str) -> str:
    """`Riverside Medical Office (prj-1)`: what people know it by, and its id."""
    return f"{name} ({upstream_id})" if name else upstream_id


async def _job_of_project(
    conn: Conn, company_id: str, project_id: str, project_name: str | None = None
) -> str:
    row = await _one(
        conn,
        "SELECT job_number FROM spectrum.jobs WHERE company_id = %s AND upstream_project_id = %s",
        (company_id, project_id),
    )
    if row is None:
        raise erp_error(
            ErrorCode.JOB_NOT_EXPORTED,
            f"Project {_named(project_name, project_id)} has no job in Spectrum yet: its "
            "export must come first",
        )
    return str(row[0])


async def _write_job(conn: Conn, job: Job) -> str:
    await conn.execute(
        "INSERT INTO spectrum.jobs (company_id, job_number, template_code, description, address,"
        " customer, division, price_type, taxable, contract_amount, upstream_project_id)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            job.company_id,
            job.job_number,
            job.template_code,
            job.description[:120],
            job.address,
            job.customer,
            job.division,
            job.price_type,
            job.taxable,
            job.contract_amount,
            job.upstream_project_id,
        ),
    )
    # The job's phases are its template's cost codes, as Spectrum creates them.
    await conn.execute(
        "INSERT INTO spectrum.job_phases"
        " (company_id, job_number, phase_code, cost_type, description)"
        " SELECT company_id, %s, phase_code, cost_type, description"
        " FROM spectrum.template_cost_codes WHERE company_id = %s AND template_code = %s",
        (job.job_number, job.company_id, job.template_code),
    )
    return job.job_number


async def _write_lines(
    conn: Conn, table: str, key: tuple[Any, ...], job: str, lines: tuple[Line, ...]
) -> None:
    columns = {
        "commitment_lines": "company_id, commitment_id",
        "change_order_lines": "company_id, commitment_id, change_order_id",
    }[table]
    placeholders = ", ".join(["%s"] * (len(key) + 5))
    async with conn.cursor() as cursor:
        await cursor.executemany(
            f"INSERT INTO spectrum.{table} ({columns}, line_number, job_number, phase_code,"  # noqa: S608 - table from a fixed map
            f" description, amount) VALUES ({placeholders})",
            [
                (*key, number, job, line.phase_code, line.description[:120], line.amount)
                for number, line in enumerate(lines, start=1)
            ],
        )


async def _write_commitment(conn: Conn, c: Commitment) -> str:
    job = await _job_of_project(conn, c.company_id, c.upstream_project_id, c.project_name)
    await conn.execute(
        "INSERT INTO spectrum.commitments (company_id, commitment_id, commitment_type, job_number,"
        " vendor_code, description, amount, upstream_id, notes)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            c.company_id,
            c.commitment_id,
            c.commitment_type,
            job,
            c.vendor_code,
            c.description[:120],
            c.amount,
            c.upstream_id,
            c.notes,
        ),
    )
    await _write_lines(conn, "commitment_lines", (c.company_id, c.commitment_id), job, c.lines)
    return c.commitment_id


async def _write_change_order(conn: Conn, co: ChangeOrder) -> str:
    row = await _one(
        conn,
        "SELECT commitment_id, job_number FROM spectrum.commitments"
        " WHERE company_id = %s AND upstream_id = %s",
        (co.company_id, co.upstream_commitment_id),
    )
    if row is None:
        raise erp_error(
            ErrorCode.COMMITMENT_NOT_EXPORTED,
            f"Commitment {_named(co.commitment_number, co.upstream_commitment_id)} is not in "
            "Spectrum yet: its export must come first",
        )
    commitment_id, job = str(row[0]), str(row[1])
    await conn.execute(
        "INSERT INTO spectrum.change_orders (company_id, commitment_id, change_order_id, title,"
        " change_order_date, amount, upstream_id, description)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (
            co.company_id,
            commitment_id,
            co.change_order_id,
            co.title,
            co.change_order_date,
            co.amount,
            co.upstream_id,
            co.description,
        ),
    )
    await _write_lines(
        conn,
        "change_order_lines",
        (co.company_id, commitment_id, co.change_order_id),
        job,
        co.lines,
    )
    return f"{commitment_id}/{co.change_order_id}"


async def _write_ar_change_request(conn: Conn, ar: ArChangeRequest) -> str:
    job = await _job_of_project(conn, ar.company_id, ar.upstream_project_id, ar.project_name)
    await conn.execute(
        "INSERT INTO spectrum.ar_change_requests (company_id, job_number, request_number,"
        " billing_item_code, description, transaction_date, amount, upstream_id)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (
            ar.company_id,
            job,
            ar.request_number,
            ar.billing_item_code,
            ar.description[:120],
            ar.transaction_date,
            ar.amount,
            ar.upstream_id,
        ),
    )
    async with conn.cursor() as cursor:
        await cursor.executemany(
            "INSERT INTO spectrum.ar_change_request_lines (company_id, job_number,"
            " request_number, line_number, prime_line_item, description, amount)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    ar.company_id,
                    job,
                    ar.request_number,
                    number,
                    line.prime_line_item,
                    line.description[:120],
                    line.amount,
                )
                for number, line in enumerate(ar.lines, start=1)
            ],
        )
    return f"{job}/{ar.request_number}"


async def write_document(conn: Conn, document: ErpDocument) -> str:
    """Write `document` inside the caller's transaction; returns the ERP reference."""
    if isinstance(document, Job):
        return await _write_job(conn, document)
    if isinstance(document, Commitment):
        return await _write_commitment(conn, document)
    if isinstance(document, ChangeOrder):
        return await _write_change_order(conn, document)
    return await _write_ar_change_request(conn, document)
