"""Scripted items for the whole-system runs: what to publish, in two phases, and where each ends."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from consumers.dev import erp_seed
from consumers.dev import samples as se
from tests.support.db import statuses
from tests.support.events import for_company
from tests.support.kafka import Raw, as_record, publish_all
from tests.support.processes import cli
from tests.support.system import System
from tests.support.waiting import eventually
from topics.specs import DECISIONS, DIRECTORY, SUBMISSIONS, TopicSpec

#: The ERP vendor the failing commitments name; it is added between the two phases.
LATE_VENDOR = "V9999"
#: The project every commitment belongs to (synced before the run).
BASE_PROJECT = "prj-100"


class Script(enum.Enum):
    """What happens to an item, and the status it must end in."""

    ACCEPT = "accept"
    REJECT = "reject"
    RETRIEVE = "retrieve"
    RESEND = "resend"  # rejected, re-sent as version 2, accepted
    FAIL_THEN_RETRY = "fail_then_retry"  # unknown vendor: Failed to Export; vendor added; retried

    @property
    def final(self) -> str:
        return {Script.REJECT: "rejected", Script.RETRIEVE: "retrieved"}.get(self, "synced")


@dataclass(frozen=True)
class Item:
    """One scripted item."""

    company: str
    n: int
    script: Script

    @property
    def kind(self) -> str:
        return "project" if self.script in (Script.ACCEPT, Script.RETRIEVE) else "commitment"

    @property
    def id(self) -> str:
        return f"{'prj' if self.kind == 'project' else 'sc'}-s{self.n}"

    @property
    def after_first_phase(self) -> str:
        return {Script.RESEND: "rejected", Script.FAIL_THEN_RETRY: "failed_to_export"}.get(
            self.script, self.script.final
        )

    @property
    def exported(self) -> bool:
        return self.script.final == "synced"

    @property
    def rejections(self) -> int:
        return 1 if self.script in (Script.REJECT, Script.RESEND) else 0


def scripted(company: str, count: int) -> list[Item]:
    """`count` items cycling through every script."""
    order = list(Script)
    return [Item(company, n, order[n % len(order)]) for n in range(count)]


def _raw(spec: TopicSpec, company: str, event: dict[str, Any]) -> Raw:
    return as_record(spec, for_company(company, event))


def _submitted(item: Item) -> dict[str, Any]:
    if item.kind == "project":
        return se.project_submitted(item.id)
    vendor = LATE_VENDOR if item.script is Script.FAIL_THEN_RETRY else "V1001"
    return se.commitment_submitted(item.id, erp_vendor_id=vendor, number=f"C{item.n:05d}")


def _accepted(item: Item, version: int) -> dict[str, Any]:
    fields: dict[str, Any] = (
        {"erp_job_id": f"J{item.n:05d}", "job_template": "COMM"} if item.kind == "project" else {}
    )
    return se.accepted(item.kind, item.id, submission_version=version, **fields)


def first_phase(item: Item) -> list[Raw]:
    """Submission and the first answer (decisions carry the version they answer)."""
    c, out = item.company, [_raw(SUBMISSIONS, item.company, _submitted(item))]
    if item.script in (Script.ACCEPT, Script.FAIL_THEN_RETRY):
        out.append(_raw(DECISIONS, c, _accepted(item, 1)))
    elif item.script in (Script.REJECT, Script.RESEND):
        rejected = se.rejected(item.kind, item.id, "numbers do not match the contract")
        out.append(
            _raw(
                DECISIONS,
                c,
                {**rejected, "payload": {**rejected["payload"], "submission_version": 1}},
            )
        )
    else:
        out.append(_raw(SUBMISSIONS, c, se.retrieved(item.kind, item.id)))
    return out


def second_phase(item: Item) -> list[Raw]:
    """Re-send and accept version 2, or retry the failed export."""
    c = item.company
    if item.script is Script.RESEND:
        return [_raw(SUBMISSIONS, c, _submitted(item)), _raw(DECISIONS, c, _accepted(item, 2))]
    if item.script is Script.FAIL_THEN_RETRY:
        retry = se.envelope("ExportRetryRequested", item=(item.kind, item.id), actor=se.APPROVER)
        return [_raw(DECISIONS, c, retry)]
    return []


def prepare_company(system: System, company: str, *, wait_s: float = 90) -> None:
    """Directory, ERP templates and vendors, and the synced project commitments belong to."""
    erp_seed.seed(system.settings.require_erp_database_url(), company)
    publish_all(
        system.settings,
        [
            _raw(DIRECTORY, company, se.company_settings(daily_summary_hour=0, timezone="UTC")),
            _raw(DIRECTORY, company, se.approver_updated(se.APPROVER)),
        ],
    )
    base = se.project_submitted(BASE_PROJECT)
    accept = se.accepted(
        "project", BASE_PROJECT, submission_version=1, erp_job_id="JBASE", job_template="COMM"
    )
    publish_all(
        system.settings, [_raw(SUBMISSIONS, company, base), _raw(DECISIONS, company, accept)]
    )
    eventually(
        lambda: statuses(system.settings, company).get(BASE_PROJECT) == "synced",
        timeout=wait_s,
        interval=0.5,
        message=f"{company}: the base project synced",
    )


def add_late_vendor(system: System, company: str) -> None:
    """`erp-pipeline erp add-vendor` as an operator would run it."""
    env = {**system.base_env, "ERP_DATABASE_URL": system.settings.require_erp_database_url()}
    done = cli(env, "erp", "add-vendor", LATE_VENDOR, "Travis Rebar", "--company", company)
    assert done.returncode == 0, done.stdout + done.stderr
