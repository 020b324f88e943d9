"""The only code that turns bytes into events and events into bytes."""

from __future__ import annotations

import base64
import json
from typing import Any, Literal

from pydantic import BaseModel, TypeAdapter, ValidationError

from topics.errors import DecodeError, SchemaError
from topics.events import EVENT_MODELS, Envelope, Event
from topics.limits import MAX_EVENT_BYTES, cut_utf8, fit_json_text
from topics.specs import TopicSpec, key_of

_ANY_EVENT: TypeAdapter[Any] = TypeAdapter(Event)


def encode(event: BaseModel) -> bytes:
    """Serialize an event to the contract's JSON (UTF-8, money as strings, RFC 3339 times)."""
    return event.model_dump_json(exclude_none=True).encode("utf-8")


def headers_for(event: Envelope) -> list[tuple[str, bytes]]:
    """The headers every output record carries."""
    headers = [
        ("event_type", event.event_type.encode()),
        ("schema_version", str(event.schema_version).encode()),
    ]
    if event.correlation_id:
        headers.append(("correlation_id", event.correlation_id.encode()))
    return headers


def record_size(event: Envelope) -> int:
    """Bytes of the record that carries `event`: its key, value, header names and values.

    What the pipeline writes is kept at most `limits.MAX_RECORD_BYTES` by this count.
    """
    headers = sum(len(name.encode()) + len(value) for name, value in headers_for(event))
    return len(key_of(event).encode()) + len(encode(event)) + headers


def format_validation_error(error: ValidationError) -> str:
    """One line per problem: `payload.reason: Value error, must not be blank`."""
    lines = []
    for problem in error.errors(include_url=False):
        location = ".".join(str(part) for part in problem["loc"]) or "(event)"
        lines.append(f"{location}: {problem['msg']}")
    return "; ".join(lines)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's members as a dict; a name given twice is refused, not overwritten.

    JSON parsers disagree on which of two equal names wins (Python keeps the last, others the
    first or refuse), so an event holding one could mean different things to different readers.
    """
    members = dict(pairs)
    if len(members) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                # json.dumps quotes the name safely (escaped controls and lone surrogates)
                shown = json.dumps(name if len(name) <= 100 else name[:100] + "...")
                raise DecodeError(f"duplicate key {shown} in a JSON object")
            seen.add(name)
    return members


#: JSON's names for what `json.loads` returns, for refusals people read.
_JSON_TYPES = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "true or false",
    type(None): "null",
}


def parse_json(text: str) -> Any:
    """JSON text to Python values as the codec reads them: a duplicate key is a `DecodeError`.

    Other malformed JSON raises `json.JSONDecodeError` (a `ValueError`), as `json.loads` does.
    """
    return json.loads(text, object_pairs_hook=_object)


def _parse(raw: bytes | str | None) -> dict[str, Any]:
    if raw is None:
        raise DecodeError("no value (a tombstone): an event is a JSON object")
    if isinstance(raw, bytes):
        if len(raw) > MAX_EVENT_BYTES:
            raise DecodeError(f"event is {len(raw)} bytes, over the {MAX_EVENT_BYTES}-byte limit")
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"not UTF-8: {exc}") from None
    elif len(raw) > MAX_EVENT_BYTES:
        raise DecodeError(f"event is over the {MAX_EVENT_BYTES}-byte limit")
    if raw.startswith("\ufeff"):
        raise DecodeError("value starts with a byte-order mark")
    try:
        value = parse_json(raw)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, or an integer literal
        raise DecodeError(f"not JSON: {exc}") from None  # past Python's digit limit
    if not isinstance(value, dict):
        raise DecodeError(f"expected a JSON object, got {_JSON_TYPES.get(type(value), 'a value')}")
    return value


def decode(raw: bytes | str | None, spec: TopicSpec | None = None) -> Any:
    """Bytes to an event model, for one topic (or for any topic when `spec` is None).

    Raises only `DecodeError` (not UTF-8 / JSON / an object, or a key given twice in an object)
    or `SchemaError` (the contract is not met); both carry the reason and, where it could be
    read, the event id.
    """
    value = _parse(raw)
    event_id = value.get("event_id") if isinstance(value.get("event_id"), str) else None
    event_type = value.get("event_type")
    if not isinstance(event_type, str) or event_type not in EVENT_MODELS:
        raise SchemaError(f"event_type: unknown event type {event_type!r}", event_id=event_id)
    if spec is not None and event_type not in spec.event_types:
        raise SchemaError(
            f"event_type: {event_type} does not belong on {spec.name} "
            f"(expected one of {', '.join(spec.event_types)})",
            event_id=event_id,
        )
    try:
        return EVENT_MODELS[event_type].model_validate(value)
    except ValidationError as exc:
        raise SchemaError(format_validation_error(exc), event_id=event_id) from None
    except (ValueError, TypeError, RecursionError) as exc:  # a validator failing oddly
        raise SchemaError(f"invalid event: {exc}", event_id=event_id) from None


def raw_for_dead_letter(
    raw: bytes | None, limit: int | None = None
) -> tuple[str, Literal["text", "base64"]]:
    """The original value as text when it is UTF-8, else base64; with the encoding used.

    With `limit`, the copy takes at most `limit` bytes inside the dead letter's JSON (escapes
    and base64's growth counted): UTF-8 text is cut between characters, other bytes in whole
    base64 groups. Whether it was cut shows by comparing with the full copy.
    """
    if raw is None:
        return "", "text"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        kept = raw if limit is None else raw[: max(0, limit) // 4 * 3]
        return base64.b64encode(kept).decode("ascii"), "base64"
    if limit is None:
        return text, "text"
    # a first cut by bytes, then to what the JSON escapes leave room for
    return fit_json_text(cut_utf8(raw, limit).decode("utf-8"), limit), "text"


__all__ = [
    "MAX_EVENT_BYTES",
    "decode",
    "encode",
    "headers_for",
    "parse_json",
    "raw_for_dead_letter",
    "record_size",
]
