"""Consumer lag of a consumer group, read from the broker (for workers whose client is hidden)."""

from __future__ import annotations

import logging
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from pipeline.metrics import Metrics

log = logging.getLogger(__name__)


class GroupLag:
    """Samples `end offset - committed offset` of a group into `erp_pipeline_consumer_lag`."""

    def __init__(self, client_kwargs: dict[str, Any], group: str, label: str, metrics: Metrics):
        self._kwargs, self._group, self._label, self._metrics = client_kwargs, group, label, metrics
        self._admin: AIOKafkaAdminClient | None = None
        self._offsets: AIOKafkaConsumer | None = None

    async def sample(self) -> None:
        """Refresh the gauge; a broker error leaves the previous values."""
        try:
            if self._admin is None:
                self._admin = AIOKafkaAdminClient(**self._kwargs)
                await self._admin.start()
                self._offsets = AIOKafkaConsumer(group_id=None, **self._kwargs)
                await self._offsets.start()
            assert self._offsets is not None
            committed = await self._admin.list_consumer_group_offsets(self._group)
            if not committed:
                return
            ends = await self._offsets.end_offsets(list(committed))
            for tp, meta in committed.items():
                self._metrics.consumer_lag.labels(self._label, tp.topic, str(tp.partition)).set(
                    max(0, ends[tp] - max(meta.offset, 0))
                )
        except KafkaError as exc:
            log.debug("lag sample of %s failed: %r", self._group, exc)

    async def close(self) -> None:
        """Close the clients."""
        if self._offsets is not None:
            await self._offsets.stop()
        if self._admin is not None:
            await self._admin.close()
