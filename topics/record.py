"""The consumed-record type: a Kafka record's coordinates and bytes, whichever client read it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from topics.limits import MAX_SOURCE_KEY_BYTES, cut_utf8
from topics.payloads import KafkaSource


@dataclass(frozen=True)
class Record:
    """The coordinates and bytes of a consumed Kafka record (`timestamp_ms`: broker time, ms)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int = 0

    @classmethod
    def of(cls, record: Any) -> Record:
        """From a consumed aiokafka `ConsumerRecord` (its timestamp is in milliseconds)."""
        return cls(
            record.topic,
            record.partition,
            record.offset,
            record.key,
            record.value,
            record.timestamp or 0,
        )

    @classmethod
    def of_message(cls, message: Any) -> Record:
        """From a faust `Message` (its timestamp is in seconds, a float)."""
        timestamp_ms = int(message.timestamp * 1000) if message.timestamp else 0
        return cls(
            message.topic,
            message.partition,
            message.offset,
            message.key,
            message.value,
            timestamp_ms,
        )

    @classmethod
    def at(cls, source: KafkaSource, value: bytes | None) -> Record:
        """The record at `source` holding `value` (bytes re-encoded from a decoded event)."""
        key = source.key.encode() if source.key is not None else None
        return cls(source.topic, source.partition, source.offset, key, value)

    @property
    def text_key(self) -> str | None:
        """The key as text (undecodable bytes replaced), as the contract's `KafkaSource` has it."""
        return self.key.decode("utf-8", "replace") if self.key is not None else None

    def source(self) -> KafkaSource:
        """Where the record was read, as events quote it (`source` of dead letters and failures).

        A key longer than `MAX_SOURCE_KEY_BYTES` is quoted by its start (`key_truncated`, with
        its size in `key_bytes`): a hostile key cannot make the quoting event too big.
        """
        if self.key is None or len(self.key) <= MAX_SOURCE_KEY_BYTES:
            return KafkaSource(
                topic=self.topic, partition=self.partition, offset=self.offset, key=self.text_key
            )
        return KafkaSource(
            topic=self.topic,
            partition=self.partition,
            offset=self.offset,
            key=cut_utf8(self.key, MAX_SOURCE_KEY_BYTES).decode("utf-8", "replace"),
            key_truncated=True,
            key_bytes=len(self.key),
        )
