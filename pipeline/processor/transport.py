"""faust's Kafka transport with the consumer's fetch wait taken from the settings.

faust-streaming 0.15.3 builds its worker consumer with `fetch_max_wait_ms=1500` written into
`AIOKafkaConsumerThread._create_worker_consumer`, and has no setting for it. On the embedded
broker, which answers a waiting fetch only when the wait is over, that wait is added to every
hop. Here the same consumer is built with `KAFKA_FETCH_MAX_WAIT_MS` instead: subclasses of
faust's aiokafka transport, consumer and consumer thread, the transport handed to the app
through its public `transport` property before the app starts (faust then creates its
consumer from `transport.Consumer`). Nothing is changed on a running client.

Also the one place that reads faust's own committed offsets (`committed_offsets`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiokafka
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from faust.exceptions import ImproperlyConfigured
from faust.transport.drivers import aiokafka as faust_aiokafka


class FetchWaitConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """faust's consumer thread; its worker consumer waits `fetch_max_wait_ms` per fetch."""

    fetch_max_wait_ms: int = 1500

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        # faust 0.15.3's own method, with `fetch_max_wait_ms` from the settings
        conf = self.app.conf
        isolation_level = "read_committed" if self.consumer.in_transaction else "read_uncommitted"
        has_changelog_tables = bool(self.app.tables.changelog_topics)
        self._assignor = (
            self.app.assignor
            if conf.table_standby_replicas > 0 or has_changelog_tables
            else RoundRobinPartitionAssignor
        )
        auth_settings = faust_aiokafka.credentials_to_aiokafka_auth(
            conf.broker_credentials, conf.ssl_context
        )
        max_poll_interval = conf.broker_max_poll_interval or 0
        request_timeout = conf.broker_request_timeout
        session_timeout = conf.broker_session_timeout
        rebalance_timeout = conf.broker_rebalance_timeout
        if session_timeout > request_timeout:
            raise ImproperlyConfigured(
                f"Setting broker_session_timeout={session_timeout} "
                f"cannot be greater than broker_request_timeout={request_timeout}"
            )
        consumer_kwargs: dict[str, Any] = {}
        if faust_aiokafka._AIOKAFKA_HAS_API_VERSION:
            consumer_kwargs["api_version"] = conf.consumer_api_version
        return aiokafka.AIOKafkaConsumer(
            **consumer_kwargs,
            client_id=conf.broker_client_id,
            group_id=conf.id,
            group_instance_id=conf.consumer_group_instance_id,
            bootstrap_servers=faust_aiokafka.server_list(transport.url, transport.default_port),
            partition_assignment_strategy=[self._assignor],
            enable_auto_commit=False,
            auto_offset_reset=conf.consumer_auto_offset_reset,
            max_poll_records=conf.broker_max_poll_records,
            max_poll_interval_ms=int(max_poll_interval * 1000.0),
            max_partition_fetch_bytes=conf.consumer_max_fetch_size,
            fetch_max_wait_ms=self.fetch_max_wait_ms,
            request_timeout_ms=int(request_timeout * 1000.0),
            check_crcs=conf.broker_check_crcs,
            session_timeout_ms=int(session_timeout * 1000.0),
            rebalance_timeout_ms=int(rebalance_timeout * 1000.0),
            heartbeat_interval_ms=int(conf.broker_heartbeat_interval * 1000.0),
            isolation_level=isolation_level,
            metadata_max_age_ms=conf.consumer_metadata_max_age_ms,
            connections_max_idle_ms=conf.consumer_connections_max_idle_ms,
            **auth_settings,
        )


def fetch_wait_transport(fetch_max_wait_ms: int) -> type[faust_aiokafka.Transport]:
    """faust's aiokafka transport class whose consumer waits `fetch_max_wait_ms` per fetch."""

    class Thread(FetchWaitConsumerThread):
        pass

    Thread.fetch_max_wait_ms = fetch_max_wait_ms

    class Consumer(faust_aiokafka.Consumer):
        def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
            return Thread(self, loop=self.loop, beacon=self.beacon)

    class Transport(faust_aiokafka.Transport):
        pass

    Transport.Consumer = Consumer
    return Transport


def use_fetch_wait(app: Any, fetch_max_wait_ms: int) -> None:
    """Give a faust `app` that has not started the transport of `fetch_wait_transport`.

    Only for the Kafka transport (`kafka://` or `aiokafka://` broker URLs); raises
    ImproperlyConfigured for another.
    """
    urls = app.conf.broker_consumer
    if any(url.scheme not in ("kafka", "aiokafka") for url in urls):
        raise ImproperlyConfigured(f"not a Kafka transport: {urls}")
    app.transport = fetch_wait_transport(fetch_max_wait_ms)(urls, app)


def committed_offsets(consumer: Any) -> Mapping[Any, int | None] | None:
    """faust's own committed offset of each partition of its consumer (TP → offset), or None
    on a faust release that lays its consumer out otherwise.

    faust keeps them in the private `Consumer._committed_offset` and offers no public read;
    asking the broker with the group's id instead would take a second client naming the group,
    which can disturb the group on some brokers.
    """
    committed = getattr(consumer, "_committed_offset", None)
    return committed if isinstance(committed, Mapping) else None


__all__ = ["FetchWaitConsumerThread", "committed_offsets", "fetch_wait_transport", "use_fetch_wait"]
