"""A view request's tab, view, filters and sort, checked once for the pages and the API."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import HTTPException, Query

from consumers.console.views import TABS, VIEWS, Tab, View
from consumers.readmodel import queries


@dataclass(frozen=True)
class ViewQuery:
    """One view of one tab, with its filters: `project` (part of the project's id or name),
    `sender` (part of the sender's e-mail or name), `min_age_days` (sent at least that many
    days ago) and `sort` (a key of `queries.SORTS`)."""

    tab: Tab
    view: View
    project: str | None
    sender: str | None
    min_age_days: float | None
    sort: str

    def rows(
        self, database_url: str, company_id: str, *, limit: int = 200, offset: int = 0
    ) -> list[dict[str, Any]]:
        """The view's items (raises `queries.ReadModelUnavailable`)."""
        sent_before = (
            dt.datetime.now(dt.UTC) - dt.timedelta(days=self.min_age_days)
            if self.min_age_days is not None
            else None
        )
        return queries.view(
            database_url,
            company_id,
            self.view.status.value,
            [t.value for t in self.tab.item_types],
            project=self.project,
            sender=self.sender,
            sent_before=sent_before,
            sort=self.sort,
            limit=limit,
            offset=offset,
        )


SORT_HELP = "age (oldest first), -age (newest first), project or sender"


def view_query(
    tab: str,
    view: str,
    project: str | None = None,
    sender: str | None = None,
    min_age_days: Annotated[
        str | None, Query(description="Sent at least this many days ago (a number, 0 or more).")
    ] = None,
    sort: Annotated[str, Query(description=f"One of: {SORT_HELP}.")] = "age",
) -> ViewQuery:
    """The request's view, checked (a FastAPI dependency).

    Raises HTTPException 404 for an unknown tab or view, 422 for an unknown sort or an age
    that is not a number of days, 0 or more. Empty filters (a form's blank fields) are none.
    """
    if tab not in TABS or view not in VIEWS:
        raise HTTPException(404, f"no view {tab}/{view}")
    if sort not in queries.SORTS:
        raise HTTPException(422, f"no sort {sort!r}: one of {', '.join(queries.SORTS)}")
    return ViewQuery(
        TABS[tab], VIEWS[view], project or None, sender or None, _days(min_age_days), sort
    )


def _days(text: str | None) -> float | None:
    if not text or not text.strip():
        return None
    try:
        days = float(text)
    except ValueError:
        days = math.nan
    if not (math.isfinite(days) and 0 <= days <= 36_500):
        raise HTTPException(
            422, f"min_age_days must be a number of days from 0 to 36500, not {text[:40]!r}"
        )
    return days
