"""Decisions made in the console: built from the contract's models, checked as the processor
would check them, and published to erp.decisions.

The pipeline still re-checks everything; what it would refuse (permission, fields, a stale
version, a transition the table does not allow) is refused here first, with its own words
(`pipeline.rules.precheck`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from consumers.console import erp
from consumers.console.auth import Person
from consumers.console.metrics import ConsoleMetrics
from consumers.readmodel import queries
from pipeline.rules.directory import Directory
from pipeline.rules.precheck import judge_decision
from topics.codec import format_validation_error
from topics.events import ExportRetryRequested, ItemAccepted, ItemEvent, ItemRejected
from topics.payloads import ItemStatus, ItemType, ProjectAcceptFields, RefusalStage

#: The console's decision names → the contract's event models.
MODELS: dict[str, type[ItemEvent]] = {
    "accept": ItemAccepted,
    "reject": ItemRejected,
    "retry": ExportRetryRequested,
}

Publish = Callable[[ItemEvent], Awaitable[None]]


@dataclass(frozen=True)
class Answer:
    """What became of one decision: `outcome` sent | refused | forbidden | invalid | not_found,
    with the HTTP status it answers with, the refusal's stage and reason, the event id sent."""

    outcome: str
    status_code: int
    reason: str | None = None
    stage: str | None = None
    event_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The answer's JSON body."""
        return {k: v for k, v in self.__dict__.items() if v is not None and k != "status_code"}


@dataclass(frozen=True)
class Decider:
    """Checks and sends decisions for one company's people."""

    database_url: str
    erp_database_url: str
    directory: Directory
    publish: Publish
    metrics: ConsoleMetrics

    def default_transaction_date(self, company_id: str, now: dt.datetime) -> dt.date:
        """Today in the company's timezone (a PCCO's transaction date when none is given)."""
        zone = ZoneInfo(self.directory.settings(company_id, now).timezone)
        return now.astimezone(zone).date()

    async def decide(
        self,
        person: Person,
        decision: str,
        item_type: str,
        item_id: str,
        submission_version: int,
        fields: dict[str, Any],
    ) -> Answer:
        """Check one decision (`accept` with the type's `fields`, `reject` with `reason`,
        `retry`) for the version the person saw, and publish it when nothing refuses it.

        Raises `ReadModelUnavailable` / `ErpUnavailable` when what it checks against cannot
        be read, and aiokafka's `KafkaError` when the decision cannot be published.
        """
        row = queries.item(self.database_url, person.company_id, item_type, item_id)
        if row is None:
            return Answer("not_found", 404, reason=f"no item {item_type}:{item_id}")
        now = dt.datetime.now(dt.UTC)
        payload = {**fields, "submission_version": submission_version}
        pcco = item_type == ItemType.PRIME_CONTRACT_CHANGE_ORDER.value
        if decision == "accept" and pcco and not payload.get("transaction_date"):
            date = self.default_transaction_date(person.company_id, now)
            payload["transaction_date"] = date.isoformat()
        envelope = {
            "event_id": str(uuid.uuid4()),
            "occurred_at": now,
            "company_id": person.company_id,
            "item": {"type": item_type, "id": item_id},
            "actor": person.actor.model_dump(),
        }
        try:
            event = MODELS[decision].model_validate({**envelope, "payload": payload})
        except ValidationError as exc:
            # who may act is judged first, as the processor does, whatever the fields say
            bare = ExportRetryRequested.model_validate(envelope)
            who = self.directory.refusal(bare)
            if who is not None:
                return self._refused(RefusalStage.AUTHORIZE, who, 403)
            return self._refused(RefusalStage.SCHEMA, format_validation_error(exc), 422)
        status = ItemStatus(row["status"])
        if submission_version > row["submission_version"]:
            # the pipeline would hold it until that version arrives and then apply it unseen:
            # nobody can have seen in the console a version it does not show
            reason = (
                f"submission version {submission_version} was never shown: the item is at "
                f"version {row['submission_version']}; reload it and decide on what it shows"
            )
            return self._refused(RefusalStage.TRANSITION, reason, 409)
        found = judge_decision(event, status, row["submission_version"], self.directory)
        if found is not None:
            code = 403 if found.stage == RefusalStage.AUTHORIZE else 409
            return self._refused(found.stage, found.reason, code)
        fields_ = getattr(event, "payload", None)
        if isinstance(fields_, ProjectAcceptFields):
            problem = erp.project_accept_problem(
                self.erp_database_url,
                person.company_id,
                item_id,
                fields_.erp_job_id,
                fields_.job_template,
            )
            if problem is not None:
                return self._refused(RefusalStage.BUSINESS_RULE, problem, 409)
        await self.publish(event)
        self.metrics.decisions.labels(event.event_type).inc()
        return Answer("sent", 202, event_id=str(event.event_id))

    def _refused(self, stage: RefusalStage, reason: str, code: int) -> Answer:
        self.metrics.refusals.labels(stage.value).inc()
        outcome = "forbidden" if code == 403 else "invalid" if code == 422 else "refused"
        return Answer(outcome, code, reason=reason, stage=stage.value)
