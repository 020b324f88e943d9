"""The company directory (approvers, settings) and who may decide: pure, as of a point in time."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field

from topics.events import ApproverUpdated, CompanySettingsUpdated, Envelope
from topics.payloads import ApproverUpdatedPayload, CompanySettingsUpdatedPayload, ErpToolPermission

#: Permissions that may accept, reject or retry, together with `can_push_to_accounting`.
DECIDING_PERMISSIONS = frozenset({ErpToolPermission.STANDARD, ErpToolPermission.ADMIN})
#: Versions of one directory entry kept, so a decision is judged by the entry of its own time.
#: Repeats go first when there are more (see `Directory.apply`).
HISTORY_LIMIT = 32

DEFAULT_SETTINGS = CompanySettingsUpdatedPayload()


def _payload(entry: Envelope) -> object:
    """What a directory version says (its envelope says who said it, and when)."""
    return entry.payload if isinstance(entry, ApproverUpdated | CompanySettingsUpdated) else None


def _as_of(history: list[Envelope], at: dt.datetime | None) -> Envelope | None:
    """The latest entry that happened at or before `at` (the very latest when `at` is None)."""
    chosen = None
    for entry in history:
        if at is None or entry.occurred_at <= at:
            chosen = entry
    return chosen


@dataclass
class Directory:
    """Approvers and company settings, each with a short history ordered by `occurred_at`."""

    entries: dict[str, list[Envelope]] = field(default_factory=dict)

    def apply(self, event: ApproverUpdated | CompanySettingsUpdated) -> bool:
        """Add a directory event to its entry's history; False when it was already known
        (same `event_id`).

        A history longer than `HISTORY_LIMIT` first loses its repeats (versions that say what
        the one before them says, as a directory sync republishing every approver makes),
        then its oldest versions. Dropping the oldest alone would leave a decision made
        before an approver's last few dozen republications with no version of its time.
        """
        if isinstance(event, ApproverUpdated):
            key = f"{event.company_id}:user:{event.payload.user_id}"
        else:
            key = f"{event.company_id}:settings"
        history = self.entries.setdefault(key, [])
        if any(entry.event_id == event.event_id for entry in history):
            return False
        history.append(event)
        history.sort(key=lambda entry: (entry.occurred_at, str(entry.event_id)))
        if len(history) > HISTORY_LIMIT:
            history[1:] = [
                entry
                for before, entry in itertools.pairwise(history)
                if _payload(entry) != _payload(before)
            ]
        del history[:-HISTORY_LIMIT]
        return True

    def approver(
        self, company_id: str, user_id: str, at: dt.datetime | None = None
    ) -> ApproverUpdatedPayload | None:
        """The user's directory entry as of `at` (None: never heard of as of then)."""
        entry = _as_of(self.entries.get(f"{company_id}:user:{user_id}", []), at)
        return entry.payload if isinstance(entry, ApproverUpdated) else None

    def settings(
        self, company_id: str, at: dt.datetime | None = None
    ) -> CompanySettingsUpdatedPayload:
        """The company's settings as of `at`, the contract's defaults before any were set."""
        history = self.entries.get(f"{company_id}:settings", [])
        entry = _as_of(history, at) or (history[0] if history else None)
        return entry.payload if isinstance(entry, CompanySettingsUpdated) else DEFAULT_SETTINGS

    def approvers(
        self, company_id: str, at: dt.datetime | None = None
    ) -> list[ApproverUpdatedPayload]:
        """Every user of the company as of `at`, by user id."""
        prefix = f"{company_id}:user:"
        found = [
            self.approver(company_id, key[len(prefix) :], at)
            for key in sorted(self.entries)
            if key.startswith(prefix)
        ]
        return [entry for entry in found if entry is not None]

    def companies(self) -> list[str]:
        """Every company the directory has heard of."""
        return sorted({key.split(":", 1)[0] for key in self.entries})


def may_decide(entry: ApproverUpdatedPayload | None) -> bool:
    """Accept/reject/retry needs ERP permission standard or admin AND Can Push to Accounting."""
    return (
        entry is not None
        and entry.erp_tool_permission in DECIDING_PERMISSIONS
        and entry.can_push_to_accounting
    )


def authorization_error(directory: Directory, event: Envelope) -> str | None:
    """Why the event's actor may not decide, as of the event's time (None: they may)."""
    entry = directory.approver(event.company_id, event.actor.user_id, event.occurred_at)
    if entry is None:
        return f"user {event.actor.user_id} is not in the company directory"
    if not may_decide(entry):
        return (
            f"user {event.actor.user_id} may not push to accounting (ERP permission "
            f"{entry.erp_tool_permission.value}, can_push_to_accounting="
            f"{str(entry.can_push_to_accounting).lower()})"
        )
    return None
