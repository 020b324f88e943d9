"""The daily-summary timer: on each tick, publish the summaries approvers are due.

What waits comes from the replica of erp.status, the summaries already sent from the replica
of erp.notifications (so none is sent twice across restarts); a summary has one id per
approver and day, so two instances ticking together yield duplicates consumers drop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from pipeline.processor.ports import Clock, Publish, Replica
from pipeline.rules.directory import Directory
from pipeline.rules.summary import SummaryState, due_summaries
from topics.events import DailySummary


def apply_notification(summaries: SummaryState, event: Any) -> None:
    """Fold a notification into the summary view: only daily summaries matter to it."""
    if isinstance(event, DailySummary):
        summaries.apply_summary(event)


class SummaryTimer:
    """Ticks over `summaries`, once every replica it reads from has caught up."""

    def __init__(
        self,
        summaries: SummaryState,
        directory: Directory,
        replicas: Sequence[Replica],
        ready: asyncio.Event,
        clock: Clock,
        publish: Publish,
    ) -> None:
        self.summaries, self.directory, self.replicas = summaries, directory, replicas
        self.ready, self.clock, self.publish = ready, clock, publish

    async def tick(self) -> None:
        """Publish every summary due now (nothing before the replicas first caught up)."""
        if not self.ready.is_set():
            return
        for replica in self.replicas:
            await replica.sync()
        for summary in due_summaries(self.summaries, self.directory, self.clock()):
            await self.publish(summary)
            self.summaries.apply_summary(summary)


__all__ = ["SummaryTimer", "apply_notification"]
