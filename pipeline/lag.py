"""Consumer lag of a consumer group, read from the broker (for workers whose client is hidden)."""

from __future__ import annotations

import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from pipeline.metrics import Metrics

log = logging.getLogger(__name__)


class GroupLag:
    """Samples `end offset - committed offset` of a group into `erp_pipeline_consumer_lag`.

    Committed offsets are fetched with a consumer that names the group but never joins it
    (OffsetFetch only), so it does not disturb the group's assignment.
    """

    def __init__(
        self,
        client_kwargs: dict[str, Any],
        group: str,
        topics: list[str],
        label: str,
        metrics: Metrics,
    ) -> None:
        self._kwargs, self._group, self._topics = client_kwargs, group, topics
        self._label, self._metrics = label, metrics
        self._consumer: AIOKafkaConsumer | None = None

    async def sample(self) -> None:
        """Refresh the gauge; a broker error leaves the previous values."""
        try:
            if self._consumer is None:
                self._consumer = AIOKafkaConsumer(
                    group_id=self._group, enable_auto_commit=False, **self._kwargs
                )
                await self._consumer.start()
            consumer = self._consumer
            await consumer.topics()
            partitions = [
                TopicPartition(topic, p)
                for topic in self._topics
                for p in sorted(consumer.partitions_for_topic(topic) or [])
            ]
            ends = await consumer.end_offsets(partitions)
            for tp in partitions:
                committed = await consumer.committed(tp) or 0
                self._metrics.consumer_lag.labels(self._label, tp.topic, str(tp.partition)).set(
                    max(0, ends[tp] - committed)
                )
        except KafkaError as exc:
            log.debug("lag sample of %s failed: %r", self._group, exc)

    async def close(self) -> None:
        """Close the client."""
        if self._consumer is not None:
            await self._consumer.stop()
