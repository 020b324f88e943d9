"""The event contract: topic specs, frozen event models, and the one codec that touches bytes."""

from topics.codec import (
    MAX_EVENT_BYTES,
    decode,
    encode,
    headers_for,
    raw_for_dead_letter,
    record_size,
)
from topics.errors import ContractError, DecodeError, SchemaError
from topics.events import EVENT_MODELS, SCHEMA_VERSION, Envelope, ItemEvent
from topics.specs import ALL_TOPICS, TOPICS_BY_NAME, TopicSpec, key_of, spec_for

__all__ = [
    "ALL_TOPICS",
    "EVENT_MODELS",
    "MAX_EVENT_BYTES",
    "SCHEMA_VERSION",
    "TOPICS_BY_NAME",
    "ContractError",
    "DecodeError",
    "Envelope",
    "ItemEvent",
    "SchemaError",
    "TopicSpec",
    "decode",
    "encode",
    "headers_for",
    "key_of",
    "raw_for_dead_letter",
    "record_size",
    "spec_for",
]
