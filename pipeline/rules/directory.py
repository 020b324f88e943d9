"""The company directory (approvers, settings) and who may act on an item: pure."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field

from topics.events import ApproverUpdated, CompanySettingsUpdated, Envelope, ItemRetrieved
from topics.payloads import (
    Actor,
    ApproverUpdatedPayload,
    CompanySettingsUpdatedPayload,
    ErpToolPermission,
)

#: Permissions that may accept, reject or retry, together with `can_push_to_accounting`.
DECIDING_PERMISSIONS = frozenset({ErpToolPermission.STANDARD, ErpToolPermission.ADMIN})
#: Versions of one directory entry kept by `occurred_at`, for what is dated rather than judged
#: (send-time and accept-time settings, the daily summary's recipients). Repeats go first when
#: there are more (see `Directory.apply`). Who may act is never judged by these dates.
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
    """Approvers and company settings: each entry's latest version in log order (`latest`, what
    who-may-act is judged by) and a short history ordered by `occurred_at` (`entries`).
    """

    entries: dict[str, list[Envelope]] = field(default_factory=dict)
    latest: dict[str, ApproverUpdated | CompanySettingsUpdated] = field(default_factory=dict)

    def apply(self, event: ApproverUpdated | CompanySettingsUpdated) -> bool:
        """Add a directory event to its entry; False when it was already known (same
        `event_id`).

        Events must be applied in log order (the processor's erp.directory replica reads each
        partition in offset order; a key lives on one partition): the last one applied is the
        entry's `latest` version, whatever its `occurred_at` says.

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
        self.latest[key] = event
        history.sort(key=lambda entry: (entry.occurred_at, str(entry.event_id)))
        if len(history) > HISTORY_LIMIT:
            history[1:] = [
                entry
                for before, entry in itertools.pairwise(history)
                if _payload(entry) != _payload(before)
            ]
        del history[:-HISTORY_LIMIT]
        return True

    def current(self, company_id: str, user_id: str) -> ApproverUpdated | None:
        """The user's latest directory version in log order (None: never heard of)."""
        entry = self.latest.get(f"{company_id}:user:{user_id}")
        return entry if isinstance(entry, ApproverUpdated) else None

    def refusal(self, event: Envelope, sender: str | None = None) -> str | None:
        """Why `event`'s actor may not do what it says (None: they may); see `refusal_of`.

        The replay overrides this to give the verdicts the live processor recorded.
        """
        return refusal_of(self.current(event.company_id, event.actor.user_id), event, sender)

    def acting(self, event: Envelope) -> Actor:
        """Who acted, as the directory names them: user id, e-mail and name from the actor's
        latest entry, the event's own actor fields only for a user the directory does not know.
        """
        entry = self.current(event.company_id, event.actor.user_id)
        if entry is None:
            return event.actor
        payload = entry.payload
        return Actor(user_id=payload.user_id, email=payload.email, name=payload.name)

    def approver(
        self, company_id: str, user_id: str, at: dt.datetime | None = None
    ) -> ApproverUpdatedPayload | None:
        """The user's directory entry as of `at` by `occurred_at` (None: never heard of as of
        then). For dated uses only; who may act is judged by `current`."""
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


def refusal_of(entry: ApproverUpdated | None, event: Envelope, sender: str | None) -> str | None:
    """Why `event`'s actor may not act, judged against `entry`, the actor's directory version
    (None: they may).

    A decision (accept, reject, retry) needs an entry that `may_decide`. A retrieve is honoured
    from the item's sender (`sender`, the user id of the submission's actor) or from a user
    who may decide. The reason names the directory version judged against (its `event_id`), so
    a refusal says what it was based on.
    """
    user = event.actor.user_id
    payload = entry.payload if entry is not None else None
    if isinstance(event, ItemRetrieved):
        if user == sender or may_decide(payload):
            return None
        return (
            f"user {user} may not retrieve this item: only its sender ({sender}) or an approver "
            f"who may push to accounting may{_basis(entry)}"
        )
    if payload is None:
        return f"user {user} is not in the company directory"
    if not may_decide(payload):
        return (
            f"user {user} may not push to accounting (ERP permission "
            f"{payload.erp_tool_permission.value}, can_push_to_accounting="
            f"{str(payload.can_push_to_accounting).lower()}){_basis(entry)}"
        )
    return None


def _basis(entry: ApproverUpdated | None) -> str:
    return f"; directory entry {entry.event_id}" if entry is not None else ""
