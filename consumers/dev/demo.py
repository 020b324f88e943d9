"""The scripted day of `erp-pipeline demo`: every step of the approval workflow on a live stack."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from consumers.dev import erp_seed
from consumers.dev import samples as se
from consumers.dev.console_client import ConsoleClient, ConsoleRefused
from consumers.export.spectrum import schema
from pipeline.kafka import make_consumer, make_producer, partitions_of, publish, stop_consumer
from pipeline.settings import Settings
from topics import ContractError, TopicSpec, decode, spec_for
from topics.specs import DEAD_LETTERS, DECISIONS, DIRECTORY, STATUS, SUBMISSIONS

COMPANY = se.COMPANY
#: The demo company's display name (`CompanySettingsUpdated.company_name`).
COMPANY_NAME = "Acme Builders"
Say = Callable[[str], None]


class StoryFailed(RuntimeError):
    """A step of the story did not reach the outcome it shows."""


@dataclass
class Watcher:
    """Follows erp.status and erp.dead-letters (no consumer group) while the story plays."""

    settings: Settings
    statuses: dict[str, list[Any]] = field(default_factory=dict)
    refusals: dict[str, Any] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        consumer = make_consumer(self.settings, group_id=None)
        await consumer.start()
        names = [self.settings.topic(STATUS.name), self.settings.topic(DEAD_LETTERS.name)]
        partitions = [tp for name in names for tp in await partitions_of(consumer, name)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        self._task = asyncio.create_task(self._follow(consumer))

    async def _follow(self, consumer: Any) -> None:
        try:
            while True:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    for record in records:
                        self._apply(record)
        finally:
            await stop_consumer(consumer)

    def _apply(self, record: Any) -> None:
        try:
            event = decode(record.value, spec_for(record.topic, self.settings.erp_topic_prefix))
        except (ContractError, KeyError):
            return
        if event.event_type == "ItemStatusChanged":
            self.statuses.setdefault(event.item_key, []).append(event)
        elif event.payload.refused_event_id:
            self.refusals[event.payload.refused_event_id] = event

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def status(self, key: str, wanted: str, timeout_s: float = 60) -> Any:
        """The item's status change to `wanted`, waiting for it."""
        return await self._until(
            lambda: next(
                (e for e in self.statuses.get(key, []) if e.payload.status.value == wanted), None
            ),
            timeout_s,
            f"{key} to become {wanted}",
        )

    async def refusal(self, event_id: str, timeout_s: float = 60) -> Any:
        """The dead letter of an event, waiting for it."""
        return await self._until(lambda: self.refusals.get(event_id), timeout_s, "a refusal")

    @staticmethod
    async def _until(find: Callable[[], Any], timeout_s: float, what: str) -> Any:
        deadline = time.monotonic() + timeout_s
        while (found := find()) is None:
            if time.monotonic() > deadline:
                raise StoryFailed(f"timed out waiting for {what}")
            await asyncio.sleep(0.1)
        return found


@dataclass
class Story:
    """The demo day. Ids carry a per-run tag so the story can be replayed on kept databases."""

    settings: Settings
    say: Say
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:4].upper())
    keys: dict[str, str] = field(default_factory=dict)
    #: The console's URL: decisions are made through its API; None: published directly.
    console_url: str | None = None
    _ana: ConsoleClient | None = None

    async def decide(self, event: dict[str, Any], shown: str, decision: str, **body: Any) -> None:
        """Ana's decision: through the console (once it shows the item `shown`) when there
        is one, else `event` published to erp.decisions."""
        if self.console_url is None:
            await self.send(DECISIONS, event)
            return
        if self._ana is None:  # signed in at her first decision: the directory knows her
            self.say(f"Ana signs in to the console at {self.console_url} and decides there.")
            ana = ConsoleClient(self.console_url, COMPANY, se.APPROVER["user_id"])
            self._ana = await ana.__aenter__()
        item_type, item_id = event["item"]["type"], event["item"]["id"]
        await self._ana.shown(item_type, item_id, shown)
        await self._ana.decide(item_type, item_id, decision, **body)

    def key(self, item_type: str, item_id: str) -> str:
        return f"{COMPANY}:{item_type}:{item_id}"

    async def send(self, spec: TopicSpec, *raw: dict[str, Any]) -> None:
        producer = make_producer(self.settings)
        await producer.start()
        try:
            for event in raw:
                await publish(producer, self.settings, spec, decode(_json(event), spec))
        finally:
            await producer.stop()

    def project(self) -> dict[str, str]:
        return {"id": f"prj-{self.tag.lower()}", "name": "Riverside Medical Office"}

    async def play(self, watcher: Watcher) -> dict[str, str]:
        """Every step; returns the item keys it used, by role. With a console, Ana decides
        through its API."""
        try:
            return await self._play(watcher)
        finally:
            if self._ana is not None:
                await self._ana.__aexit__(None, None, None)
                self._ana = None

    async def _play(self, watcher: Watcher) -> dict[str, str]:
        t, say = self.tag, self.say
        erp_seed.seed(self.settings.require_erp_database_url(), COMPANY)
        say("The ERP knows the demo company: job templates, cost codes, vendors.")
        await self.send(
            DIRECTORY,
            se.company_settings(daily_summary_hour=23, timezone="UTC", company_name=COMPANY_NAME),
            se.approver_updated(se.APPROVER, digest_subscribed=False),
            se.approver_updated(se.VIEWER, privileged=False),
        )
        say("Directory: Ana may push to accounting; Vic may only look.")

        prj = self.project()
        project = se.project_submitted(prj["id"])
        project["payload"]["project"] = prj
        await self.send(SUBMISSIONS, project)
        key = self.keys["project"] = self.key("project", prj["id"])
        await watcher.status(key, "ready_to_export")
        say(f"Project {prj['id']} sent to ERP → Ready to Export.")
        job = f"RMO{t}"
        fields: dict[str, Any] = {"erp_job_id": job, "job_template": "COMM"}
        await self.decide(
            se.accepted("project", prj["id"], **fields), "ready_to_export", "accept", fields=fields
        )
        synced = await watcher.status(key, "synced")
        say(
            f"Ana accepts it with Spectrum Job ID {job}, template COMM → synced "
            f"(ERP job {synced.payload.erp_reference})."
        )

        rejected = self._commitment(f"sc-r-{t.lower()}", f"SCR{t}")
        await self.send(SUBMISSIONS, rejected)
        key = self.keys["rejected"] = self.key("commitment", rejected["item"]["id"])
        await watcher.status(key, "ready_to_export")
        reason = "Retainage must be 10 %, not 5 %"
        await self.decide(
            se.rejected("commitment", rejected["item"]["id"], reason),
            "ready_to_export",
            "reject",
            reason=reason,
        )
        await watcher.status(key, "rejected")
        say("A commitment is rejected with a reason → editable again; its creator gets an e-mail.")

        commitment = self._commitment(f"sc-{t.lower()}", f"SC{t}")
        await self.send(SUBMISSIONS, commitment)
        key = self.keys["commitment"] = self.key("commitment", commitment["item"]["id"])
        await watcher.status(key, "ready_to_export")
        await self.decide(
            se.accepted("commitment", commitment["item"]["id"]), "ready_to_export", "accept"
        )
        await watcher.status(key, "synced")
        say(f"Commitment SC{t} accepted → synced as a subcontract.")

        cco = se.cco_submitted(f"cco-{t.lower()}", project=prj)
        cco["payload"]["number"] = f"CCO{t}"
        cco["payload"]["snapshot"]["commitment"] = {
            "id": commitment["item"]["id"],
            "number": f"SC{t}",
            "erp_synced": True,
        }
        await self.send(SUBMISSIONS, cco)
        key = self.keys["cco"] = self.key("commitment_change_order", cco["item"]["id"])
        await watcher.status(key, "ready_to_export")
        fields = {"change_order_date": "2026-11-21"}
        await self.decide(
            se.accepted("commitment_change_order", cco["item"]["id"], **fields),
            "ready_to_export",
            "accept",
            fields=fields,
        )
        await watcher.status(key, "synced")
        say("A CCO accepted with a change order date → synced.")

        pcco = se.pcco_submitted(f"pcco-{t.lower()}", project=prj)
        pcco["payload"]["number"] = f"PCCO{t}"
        pcco["payload"]["snapshot"]["line_items"].append(
            {
                "id": "pli-2",
                "description": "Lobby lighting allowance",
                "amount": "-1500.00",
                "associated_prime_line_item": "PL-9",
            }
        )
        pcco["payload"]["amount"] = "46500.00"
        await self.send(SUBMISSIONS, pcco)
        key = self.keys["pcco"] = self.key("prime_contract_change_order", pcco["item"]["id"])
        await watcher.status(key, "ready_to_export")
        await self.decide(
            se.accepted("prime_contract_change_order", pcco["item"]["id"]),
            "ready_to_export",
            "accept",
        )
        synced = await watcher.status(key, "synced")
        say(
            f"A PCCO accepted (transaction date: today in the company's timezone) → synced as "
            f"AR change request {synced.payload.erp_reference} with its lines: "
            + "; ".join(self._pcco_lines(pcco["item"]["id"]))
        )

        pcco = se.pcco_submitted(
            f"pcco-r-{t.lower()}", billing_item_code="BILL-000011", project=prj
        )
        await self.send(SUBMISSIONS, pcco)
        key = self.keys["pcco_refused"] = self.key(
            "prime_contract_change_order", pcco["item"]["id"]
        )
        refused = await watcher.status(key, "send_refused")
        say(
            f"A PCCO with an 11-character billing item code is refused at send time: "
            f"{'; '.join(refused.payload.reasons)}"
        )

        unknown = self._commitment(f"sc-v-{t.lower()}", f"SCV{t}", vendor="V9" + t)
        await self.send(SUBMISSIONS, unknown)
        key = self.keys["failed"] = self.key("commitment", unknown["item"]["id"])
        await watcher.status(key, "ready_to_export")
        await self.decide(
            se.accepted("commitment", unknown["item"]["id"]), "ready_to_export", "accept"
        )
        failed = await watcher.status(key, "failed_to_export")
        say(f"A commitment whose vendor the ERP lacks → Failed to Export: {failed.payload.reason}")
        with psycopg.connect(self.settings.require_erp_database_url()) as conn:
            schema.add_vendor(conn, COMPANY, "V9" + t, "Hill Country Steel")
        await self.decide(
            se.envelope(
                "ExportRetryRequested",
                item=("commitment", unknown["item"]["id"]),
                actor=se.APPROVER,
            ),
            "failed_to_export",
            "retry",
        )
        await watcher.status(key, "synced")
        say(f"Vendor V9{t} added in the ERP, export retried → synced.")

        waiting = self._commitment(f"sc-w-{t.lower()}", f"SCW{t}")
        await self.send(SUBMISSIONS, waiting)
        key = self.keys["waiting"] = self.key("commitment", waiting["item"]["id"])
        await watcher.status(key, "ready_to_export")
        decision = se.rejected("commitment", waiting["item"]["id"], "Not my call", se.VIEWER)
        if self.console_url is not None:
            await self._console_refuses_vic(waiting["item"]["id"])
        await self.send(DECISIONS, decision)
        dead = await watcher.refusal(decision["event_id"])
        say(
            f"Vic's reject sent straight to erp.decisions → refused by the pipeline "
            f"({dead.payload.stage.value}): {dead.payload.error}"
        )

        await self.send(
            DIRECTORY,
            se.company_settings(daily_summary_hour=0, timezone="UTC", company_name=COMPANY_NAME),
            se.approver_updated(se.APPROVER, digest_subscribed=True),
        )
        say("Ana subscribes to the digest: she gets the ERP Integrations Daily Summary.")
        return self.keys

    def _pcco_lines(self, item_id: str) -> list[str]:
        """The PCCO's lines as the reference ERP holds them."""
        with psycopg.connect(self.settings.require_erp_database_url()) as conn:
            rows = conn.execute(
                "SELECT l.prime_line_item, l.description, l.amount"
                " FROM spectrum.ar_change_request_lines l JOIN spectrum.ar_change_requests r"
                " USING (company_id, job_number, request_number)"
                " WHERE r.company_id = %s AND r.upstream_id = %s ORDER BY l.line_number",
                (COMPANY, item_id),
            ).fetchall()
        return [f"{line} {description} {amount:,.2f}" for line, description, amount in rows]

    def _commitment(self, item_id: str, number: str, vendor: str = "V1001") -> dict[str, Any]:
        event = se.commitment_submitted(
            item_id, erp_vendor_id=vendor, number=number, project=self.project()
        )
        return event

    async def _console_refuses_vic(self, item_id: str) -> None:
        """Vic, read-only, tries the console: it refuses on the spot with the reason."""
        assert self.console_url is not None
        async with ConsoleClient(self.console_url, COMPANY, se.VIEWER["user_id"]) as vic:
            await vic.shown("commitment", item_id, "ready_to_export")
            try:
                await vic.decide("commitment", item_id, "reject", reason="Not my call")
            except ConsoleRefused as refused:
                self.say(f"Vic tries to reject it in the console → {refused.status}: {refused}")
                return
        raise StoryFailed("the console let a read-only user reject")


def _json(event: dict[str, Any]) -> str:
    import json

    return json.dumps(event)
