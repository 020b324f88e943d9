"""The consumed-record type: a Kafka record's coordinates and bytes, whichever client read it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from topics.codec import decode
from topics.errors import DecodeError
from topics.limits import MAX_SOURCE_KEY_BYTES, cut_utf8
from topics.payloads import KafkaSource
from topics.specs import TopicSpec

#: How much of a header name that is not UTF-8 a refusal quotes, in bytes.
SHOWN_HEADER_BYTES = 64


@dataclass(frozen=True)
class Record:
    """The coordinates and bytes of a consumed Kafka record (`timestamp_ms`: broker time, ms;
    `header_error`: why its headers break the contract, see `header_error`)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int = 0
    header_error: str | None = None

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
            header_error(record.headers),
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
            header_error(message.headers),
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


def header_error(headers: Iterable[tuple[str, Any]] | Mapping[str, Any] | None) -> str | None:
    """Why a consumed record's headers break the contract, or None.

    Kafka types a header name as UTF-8 text. A name that is not arrives from the consumer with
    its bytes as lone surrogates (`pipeline.header_names`), and such a record is refused at
    the decode stage. Header values are bytes and are not checked.
    """
    names = headers.keys() if isinstance(headers, Mapping) else (n for n, _ in headers or ())
    for name in names:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raw = name.encode("utf-8", "surrogateescape")
            shown = raw[:SHOWN_HEADER_BYTES]
            more = "" if len(shown) == len(raw) else f"... ({len(raw)} bytes)"
            return f"header name {shown!r}{more} is not UTF-8"
    return None


def decode_record(record: Record, spec: TopicSpec) -> Any:
    """The event a consumed record holds (one of `spec`'s models), checked against `spec` as
    `topics.decode` does.

    Raises `DecodeError` for headers that break the contract (`header_error`) as well as for
    a value that is not a JSON object, and `SchemaError` for one that breaks the topic's schema.
    """
    if record.header_error is not None:
        raise DecodeError(record.header_error)
    return decode(record.value, spec)
