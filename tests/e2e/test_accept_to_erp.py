"""From Send to ERP to the reference ERP and the inbox, every worker live (#19).

On the real broker, PostgreSQL and an SMTP sink, two companies (custom CCO ids off and on):
CCO and PCCO rejection e-mails reach their creator; a PCCO accepted right after its project
waits for the project's job and reaches `synced` with its lines in the ERP; a commitment in
Failed to Export is rejected from there; a custom CCO id is refused with the feature off and
exported with it on.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from email.message import EmailMessage
from typing import Any

import pytest

from consumers.dev import samples as se
from consumers.dev.mailsink import MailSink
from consumers.dev.stack import Stack
from pipeline.settings import Settings
from tests.support.db import erp_rows, statuses
from tests.support.events import for_company
from tests.support.kafka import about, isolated, publish, wait_for_events
from tests.support.processes import cli
from tests.support.waiting import eventually
from tests.support.workers import Workers
from topics.specs import DEAD_LETTERS, DECISIONS, DIRECTORY, SUBMISSIONS

pytestmark = pytest.mark.timeout(300)

OFF, ON = "fields-off", "fields-on"
CREATOR = {"user_id": "u-cora", "email": "cora.creator@acme.example", "name": "Cora Creator"}


@dataclass
class Run:
    """What the scripted run left behind."""

    settings: Settings
    sink: MailSink


#: Every item of the run is on this project.
PROJECT = {"id": "prj-1", "name": "Riverside Medical Office"}


def _cco(company: str, item_id: str, commitment: str, number: str) -> dict[str, Any]:
    raw = se.cco_submitted(item_id, created_by=CREATOR, project=PROJECT)
    raw["payload"]["snapshot"]["commitment"] = {
        "id": commitment,
        "number": number,
        "erp_synced": True,
    }
    return for_company(company, raw)


def _pcco(company: str, item_id: str, number: str) -> dict[str, Any]:
    raw = se.pcco_submitted(item_id, created_by=CREATOR, project=PROJECT)
    raw["payload"]["number"] = number
    raw["payload"]["snapshot"]["line_items"].append(
        {
            "id": "pli-2",
            "description": "Lobby lighting",
            "amount": "-1500.50",
            "associated_prime_line_item": "PL-9",
        }
    )
    return for_company(company, raw)


def _decide(company: str, raw: dict[str, Any]) -> dict[str, Any]:
    return for_company(company, raw)


def _settled(settings: Settings, company: str, wanted: dict[str, str]) -> None:
    eventually(
        lambda: all(statuses(settings, company).get(k) == v for k, v in wanted.items()),
        timeout=120,
        message=lambda: f"{company}: {statuses(settings, company)}, wanted {wanted}",
    )


@pytest.fixture(scope="module")
def run(
    stack: Stack, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Run]:
    """The scripted day: submissions, decisions, a reject from Failed to Export."""
    mine = asyncio.run(isolated(settings, "tofields"))
    sink = MailSink(tmp_path_factory.mktemp("maildrop")).start()
    workers = Workers.beside(stack, mine, tmp_path_factory.mktemp("fields-data"), SMTP_URL=sink.url)
    env = workers.env()
    try:
        for company, custom in ((OFF, False), (ON, True)):
            assert cli(env, "erp", "seed", "--company", company).returncode == 0
            publish(
                mine,
                DIRECTORY,
                for_company(company, se.company_settings(custom_cco_id_enabled=custom)),
                for_company(company, se.approver_updated(se.APPROVER)),
            )
        for name in ("processor", "projection", "exporter", "notifier"):
            workers.start_worker(name)
        project = se.project_submitted("prj-1")
        publish(
            mine,
            SUBMISSIONS,
            *(for_company(c, project) for c in (OFF, ON)),
            *(
                for_company(
                    c,
                    se.commitment_submitted(
                        "sc-1", number="SC-1", created_by=CREATOR, project=PROJECT
                    ),
                )
                for c in (OFF, ON)
            ),
            for_company(
                OFF,
                se.commitment_submitted(
                    "sc-bad",
                    number="SC-BAD",
                    erp_vendor_id="V7777",
                    created_by=CREATOR,
                    project=PROJECT,
                ),
            ),
            _cco(OFF, "cco-off", "sc-1", "SC-1"),
            _cco(OFF, "cco-rej", "sc-1", "SC-1"),
            _cco(ON, "cco-on", "sc-1", "SC-1"),
            _pcco(OFF, "pcco-ok", "PCCO-1"),
            _pcco(OFF, "pcco-rej", "PCCO-2"),
        )
        ready = "ready_to_export"
        _settled(
            mine,
            OFF,
            dict.fromkeys(
                ("prj-1", "sc-1", "sc-bad", "cco-off", "cco-rej", "pcco-ok", "pcco-rej"), ready
            ),
        )
        _settled(mine, ON, dict.fromkeys(("prj-1", "sc-1", "cco-on"), ready))
        job = {"erp_job_id": "J-1", "job_template": "COMM"}
        cco_date = {"change_order_date": "2026-11-21"}
        publish(
            mine,
            DECISIONS,
            *(_decide(c, se.accepted("project", "prj-1", **job)) for c in (OFF, ON)),
            # accepted right after their project: they wait for its job
            *(_decide(c, se.accepted("commitment", "sc-1")) for c in (OFF, ON)),
            _decide(OFF, se.accepted("commitment", "sc-bad")),
            _decide(OFF, se.accepted("prime_contract_change_order", "pcco-ok")),
            _decide(OFF, se.rejected("commitment_change_order", "cco-rej", "Wrong cost code")),
            _decide(OFF, se.rejected("prime_contract_change_order", "pcco-rej", "Owner declined")),
            # custom CCO ids off: an id is refused; the accept without one goes through
            _decide(
                OFF,
                se.accepted(
                    "commitment_change_order", "cco-off", erp_change_order_id="CO-99", **cco_date
                ),
            ),
            _decide(OFF, se.accepted("commitment_change_order", "cco-off", **cco_date)),
            _decide(
                ON,
                se.accepted(
                    "commitment_change_order", "cco-on", erp_change_order_id="CO-77", **cco_date
                ),
            ),
        )
        _settled(
            mine,
            OFF,
            {
                "prj-1": "synced",
                "sc-1": "synced",
                "sc-bad": "failed_to_export",
                "pcco-ok": "synced",
                "pcco-rej": "rejected",
                "cco-off": "synced",
                "cco-rej": "rejected",
            },
        )
        _settled(mine, ON, {"prj-1": "synced", "sc-1": "synced", "cco-on": "synced"})
        publish(
            mine,
            DECISIONS,
            _decide(OFF, se.rejected("commitment", "sc-bad", "Vendor is not set up in Spectrum")),
        )
        _settled(mine, OFF, {"sc-bad": "rejected"})
        eventually(
            lambda: len(_to(sink, CREATOR["email"])) >= 3,
            timeout=60,
            message=lambda: f"rejection e-mails to the creator: {_subjects(sink)}",
        )
        workers.stop_workers()
        yield Run(mine, sink)
    finally:
        workers.stop_workers()
        sink.stop()


def _parsed(sink: MailSink) -> list[tuple[tuple[str, ...], EmailMessage]]:
    return [
        (m.rcpt_tos, email.message_from_bytes(m.content, policy=email.policy.default))  # type: ignore[misc]
        for m in sink.messages()
    ]


def _to(sink: MailSink, address: str) -> list[EmailMessage]:
    return [message for rcpts, message in _parsed(sink) if address in rcpts]


def _subjects(sink: MailSink) -> list[str]:
    return [str(message["Subject"]) for _, message in _parsed(sink)]


def _body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""  # type: ignore[no-any-return]


def test_cco_and_pcco_rejections_and_a_reject_from_failed_to_export_mail_the_creator(
    run: Run,
) -> None:
    mails = _to(run.sink, CREATOR["email"])
    bodies = "\n".join(str(m["Subject"]) + "\n" + _body(m) for m in mails)
    for words in ("Wrong cost code", "Owner declined", "Vendor is not set up in Spectrum"):
        assert words in bodies, bodies
    assert not [m for m in _to(run.sink, se.SENDER["email"]) if "Wrong cost code" in _body(m)]


def test_a_pcco_accepted_with_its_project_reaches_synced_with_its_lines_in_the_erp(
    run: Run,
) -> None:
    assert erp_rows(
        run.settings,
        "SELECT l.line_number, l.prime_line_item, l.description, l.amount"
        " FROM spectrum.ar_change_request_lines l JOIN spectrum.ar_change_requests r"
        " USING (company_id, job_number, request_number)"
        " WHERE r.company_id = %s AND r.upstream_id = 'pcco-ok' ORDER BY l.line_number",
        OFF,
    ) == [
        (1, "PL-7", "Lobby stone", Decimal("48000.0000")),
        (2, "PL-9", "Lobby lighting", Decimal("-1500.5000")),
    ]


def test_a_custom_cco_id_is_refused_with_the_feature_off_and_exported_with_it_on(run: Run) -> None:
    refused = wait_for_events(run.settings, DEAD_LETTERS, about("cco-off"))
    assert any("custom CCO ids turned off" in e.payload.error for e in refused)
    ids = {
        company: erp_rows(
            run.settings,
            "SELECT change_order_id FROM spectrum.change_orders"
            " WHERE company_id = %s AND upstream_id = %s",
            company,
            item,
        )
        for company, item in ((OFF, "cco-off"), (ON, "cco-on"))
    }
    assert ids == {OFF: [("CCO-001",)], ON: [("CO-77",)]}
