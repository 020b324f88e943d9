"""Typed settings from environment variables; the one place configuration is read."""

from __future__ import annotations

import ssl
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from topics.specs import NOTIFICATIONS, prefixed


class ConfigurationError(RuntimeError):
    """A setting names something this process cannot use (a store whose package is missing).

    The message names the setting and what to do; the CLI shows it and exits 1.
    """


class Settings(BaseSettings):
    """Everything a worker or the CLI needs, from the environment (see README "Configuration").

    `kafka_bootstrap_servers` and `database_url` are None when unset: the embedded stack
    (`erp-pipeline dev`) then starts its own broker / PostgreSQL and fills them in.
    """

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    kafka_bootstrap_servers: str | None = None
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None
    kafka_ssl_certfile: str | None = None
    kafka_ssl_keyfile: str | None = None
    kafka_session_timeout_ms: int = Field(default=10_000, ge=1_000)
    kafka_heartbeat_interval_ms: int = Field(default=1_000, ge=100)
    kafka_replication_factor: int = Field(default=1, ge=1)
    #: How long a fetch may wait for data. Kafka answers a waiting fetch as soon as data
    #: arrives; the embedded broker does not, so this wait is added to every hop there.
    kafka_fetch_max_wait_ms: int = Field(default=20, ge=1, le=10_000)
    #: Send every record in a record batch of its own. For brokers that report a partition's
    #: end offset as the last batch's first offset + 1 (the embedded broker does): with
    #: multi-record batches they hide the batch's other records from anything reading "up to
    #: the end", such as the processor restoring its table from the changelog after a
    #: rebalance. `erp-pipeline dev` turns it on when it starts the embedded broker; leave it
    #: off against Apache Kafka (it costs throughput there and fixes nothing).
    kafka_single_record_batches: bool = False

    erp_topic_prefix: str = ""
    database_url: SecretStr | None = None
    erp_database_url: SecretStr | None = None

    #: The export consumer: attempts per export before a transient error counts as a failure,
    #: the exponential backoff between them, and how many exports run at once.
    exporter_max_attempts: int = Field(default=10, ge=1)
    exporter_retry_base_s: float = Field(default=0.5, gt=0)
    exporter_retry_max_s: float = Field(default=30.0, gt=0)
    exporter_concurrency: int = Field(default=16, ge=1, le=256)
    exporter_timeout_s: float = Field(default=30.0, gt=0)
    exporter_batch_max: int = Field(default=100, ge=1, le=10_000)

    data_dir: str = ".data"
    processor_store: Literal["rocksdb", "memory"] = "rocksdb"
    processor_web_port: int = Field(default=0, ge=0, le=65535)  # 0: no faust web server
    processor_summary_interval_s: float = Field(default=60.0, gt=0)
    #: The items agent applies records in batches: at most this many per batch, and a batch
    #: is handed over once this many milliseconds passed since the last one (it takes what
    #: has arrived by then, however few).
    processor_batch_max: int = Field(default=500, ge=1, le=10_000)
    processor_batch_within_ms: int = Field(default=5, ge=1, le=10_000)
    #: Test-only fault injection: the rules raise on every event of the item with this id, to
    #: prove an unexpected error is dead-lettered and the partition keeps flowing. Never set
    #: it in a deployment.
    processor_poison_item_id: str | None = None
    #: Test-only fault injection: the processor exits at once (code 70, nothing flushed, as a
    #: SIGKILL would leave it) at this point of the first batch of more than one record that
    #: reaches it (see the crash table in docs/reliability.md). Never set it in a deployment.
    processor_crash_at: Literal["", "stored", "durable", "sent", "cleared", "checkpointed"] = ""
    metrics_port: int = Field(default=9464, ge=0, le=65535)
    metrics_sample_interval_s: float = Field(default=5.0, gt=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # notifier: SMTP_URL is smtp://[user[:password]@]host[:port] (smtps:// for implicit TLS,
    # smtp+starttls:// or ?starttls=1 for STARTTLS); unset in dev means the embedded mail sink.
    smtp_url: SecretStr | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "ERP Integrations <erp-integrations@localhost>"
    smtp_timeout_s: float = Field(default=30.0, gt=0)
    item_url_template: str | None = None
    #: The console's public URL (`https://console.example.com/`): e-mails link to the item's
    #: page there (`<url>/items/{item_type}/{item_id}`) unless ITEM_URL_TEMPLATE is set.
    console_public_url: str | None = None
    notifier_retry_max_s: float = Field(default=30.0, gt=0)
    #: A notification the mail server defers (a 4xx to its RCPT TO or DATA while the server
    #: otherwise works) is tried at most `notifier_max_attempts` times, and no longer than
    #: `notifier_defer_max_s` after its first deferral, before it is marked failed and
    #: dead-lettered. An unavailable server (an outage) is retried without bound.
    notifier_max_attempts: int = Field(default=10, ge=1)
    notifier_defer_max_s: float = Field(default=900.0, gt=0)
    #: E-mails in flight: one per partition of erp.notifications at a time (in order), up to
    #: this many partitions at once (the default is the topic's partition count).
    notifier_concurrency: int = Field(default=NOTIFICATIONS.partitions, ge=1, le=256)
    mailsink_port: int = Field(default=2525, ge=0, le=65535)

    def topic(self, name: str) -> str:
        """Contract topic name → the deployed name (with `ERP_TOPIC_PREFIX`)."""
        return prefixed(self.erp_topic_prefix, name)

    def group(self, name: str) -> str:
        """A consumer group's (or the processor app's) deployed name (with `ERP_TOPIC_PREFIX`)."""
        return prefixed(self.erp_topic_prefix, name)

    def require_bootstrap(self) -> str:
        """The broker address, or a clear error when none is configured."""
        if not self.kafka_bootstrap_servers:
            raise ConfigurationError(
                "KAFKA_BOOTSTRAP_SERVERS is not set (run `erp-pipeline dev` for an embedded broker)"
            )
        return self.kafka_bootstrap_servers

    def require_database_url(self) -> str:
        """The database URL, or a clear error when none is configured."""
        if self.database_url is None:
            raise ConfigurationError(
                "DATABASE_URL is not set (run `erp-pipeline dev` for an embedded PostgreSQL)"
            )
        return self.database_url.get_secret_value()

    def require_erp_database_url(self) -> str:
        """The reference ERP's database URL: `ERP_DATABASE_URL`, else `DATABASE_URL`."""
        if self.erp_database_url is not None:
            return self.erp_database_url.get_secret_value()
        return self.require_database_url()

    def kafka_client_kwargs(self) -> dict[str, Any]:
        """Connection options for aiokafka clients (producer, consumer, admin)."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.require_bootstrap(),
            "security_protocol": self.kafka_security_protocol,
        }
        if self.kafka_security_protocol in ("SSL", "SASL_SSL"):
            context = ssl.create_default_context(cafile=self.kafka_ssl_cafile)
            if self.kafka_ssl_certfile:
                context.load_cert_chain(self.kafka_ssl_certfile, self.kafka_ssl_keyfile)
            kwargs["ssl_context"] = context
        if self.kafka_sasl_mechanism:
            kwargs["sasl_mechanism"] = self.kafka_sasl_mechanism
            kwargs["sasl_plain_username"] = self.kafka_sasl_username
            kwargs["sasl_plain_password"] = (
                self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None
            )
        return kwargs

    def masked(self) -> dict[str, Any]:
        """Settings as a dict with secrets masked, safe to print or log."""
        shown = self.model_dump()
        for name, value in shown.items():
            if isinstance(value, SecretStr):
                shown[name] = "**********"
        return shown
