"""The key check: a record's key must be the one its event has on its topic (pure).

Every event of an item carries the key `company:type:id` (directory and company-keyed topics
their own format, `topics.specs.KeyFormat`), because the key decides the partition and so
where the item's state lives. A record under another key (another company, a null key, bytes
that are not UTF-8) would be applied where the item's later events never arrive: it is
refused at stage `schema` instead, naming the expected and the given key.
"""

from __future__ import annotations

from pipeline.rules.refusals import refusal
from topics import Envelope, TopicSpec
from topics.events import EventRefused
from topics.limits import truncate
from topics.payloads import RefusalStage
from topics.record import Record
from topics.specs import expected_key

#: The most characters of a wrong key a refusal's reason quotes (`source.key` has the rest).
QUOTED_KEY_CHARS = 200


def describe_key(key: bytes | None) -> str:
    """A record key as a refusal's reason quotes it: bounded, printable, never raising.

    `None` is "null (no key)"; UTF-8 is quoted (Python string escapes for control
    characters) and cut at `QUOTED_KEY_CHARS` characters with a marker; anything else is
    quoted with its undecodable bytes escaped (`\\xff`) and marked "not UTF-8".
    """
    if key is None:
        return "null (no key)"
    try:
        text = key.decode("utf-8")
    except UnicodeDecodeError:
        text = key.decode("utf-8", "backslashreplace")
        return f"{_quoted(text)} (not UTF-8, {len(key)} bytes)"
    return _quoted(text)


def _quoted(text: str) -> str:
    quoted = repr(text)
    return truncate(quoted, QUOTED_KEY_CHARS)


def key_error(spec: TopicSpec, record: Record, event: Envelope) -> str | None:
    """Why `record`'s key is not the key `event` has on `spec`'s topic, or None when it is.

    The comparison is on bytes: the key must be exactly the expected key's UTF-8.
    """
    expected = expected_key(spec, event)
    if record.key == expected.encode("utf-8"):
        return None
    return (
        f"record key {describe_key(record.key)} is not the key of its event: expected "
        f"{expected!r} ({event.event_type} on {spec.name} is keyed {spec.key_format.value})"
    )


def key_refusal(spec: TopicSpec, record: Record, event: Envelope) -> EventRefused | None:
    """The dead letter (stage schema) of a record whose key is not its event's, or None."""
    error = key_error(spec, record, event)
    if error is None:
        return None
    return refusal(record, RefusalStage.SCHEMA, error, event=event)


__all__ = ["QUOTED_KEY_CHARS", "describe_key", "key_error", "key_refusal"]
