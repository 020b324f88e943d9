"""What the console asks the reference ERP before a project is accepted: templates, Job IDs."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row


class ErpUnavailable(RuntimeError):
    """The ERP's database could not be read."""


def _rows(url: str, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    try:
        with psycopg.connect(url, row_factory=dict_row) as conn:
            return list(conn.execute(sql.encode(), params))
    except psycopg.Error as exc:
        raise ErpUnavailable(f"could not read the ERP: {exc}") from exc


def job_templates(url: str, company_id: str) -> list[dict[str, Any]]:
    """The company's job templates in the ERP: rows of `code`, `description`, by code.

    Raises `ErpUnavailable`."""
    return _rows(
        url,
        "SELECT template_code AS code, description FROM spectrum.job_templates"
        " WHERE company_id = %s ORDER BY template_code",
        (company_id,),
    )


#: The longest Job ID Spectrum takes (`spectrum.jobs.job_number`, the catalogue's
#: `value_too_long`): refused on the spot rather than failing the export.
JOB_ID_CHARS = 10


def project_accept_problem(
    url: str, company_id: str, project_id: str, job_id: str, template: str
) -> str | None:
    """Why the ERP would turn the project's export down (None: it would not, as of now): a
    template it does not have, or a Job ID already used by another project.

    Raises `ErpUnavailable`."""
    if len(job_id) > JOB_ID_CHARS:
        return (
            f"The Job ID {job_id!r} is {len(job_id)} characters; Spectrum takes at most "
            f"{JOB_ID_CHARS}"
        )
    codes = {row["code"] for row in job_templates(url, company_id)}
    if template not in codes:
        known = ", ".join(sorted(codes)) or "none"
        return f"job template {template} is not one of the ERP's templates ({known})"
    jobs = _rows(
        url,
        "SELECT upstream_project_id FROM spectrum.jobs WHERE company_id = %s AND job_number = %s",
        (company_id, job_id),
    )
    if jobs and jobs[0]["upstream_project_id"] != project_id:
        return f"Job ID {job_id} is already used in the ERP by another job"
    return None
