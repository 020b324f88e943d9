"""Size limits of events and Kafka records, and the one way text is cut to fit them (pure).

Every value the pipeline derives is bounded where it is built, never by a broker refusing it:
free text is cut with a marker that says how much was left out (`truncate`), lists end in
"… and N more" (`listing`), and raw bytes are cut on a UTF-8 boundary (`cut_utf8`) or to what
their JSON string form allows (`fit_json_text`).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic_core import to_json

#: Values above this size are refused before parsing (1 MiB): the contract's input limit.
MAX_EVENT_BYTES = 1024 * 1024
#: Apache Kafka's defaults: a producer's `max.request.size` (1 MiB); the broker's
#: `message.max.bytes` (1 048 588) is a little larger.
KAFKA_MAX_REQUEST_BYTES = 1024 * 1024
#: The most a record the pipeline writes may hold, key + value + headers: Kafka's default
#: limit less ~47 KiB of headroom for the record and batch framing the client adds. Below
#: `MAX_EVENT_BYTES` too, so whatever the pipeline writes it can also read back.
MAX_RECORD_BYTES = 1_000_000
#: The longest record key (in bytes) an event quotes as `source.key`; longer ones are cut.
MAX_SOURCE_KEY_BYTES = 1024
#: Longest reason a person gives or reads (`Reason`, a send-time refusal's `reasons[]`).
REASON_CHARS = 2000
#: Longest error or ERP message an event carries (`error_message`, a dead letter's `error`).
MESSAGE_CHARS = 8000


def truncate(text: str, limit: int) -> str:
    """`text` if it has at most `limit` characters, else its start and a marker, `limit` in all.

    The marker says how much was cut: `"… (1234 more characters)"`.
    """
    if len(text) <= limit:
        return text
    marker = f"… ({len(text)} more characters)"  # at least as long as the final marker
    kept = max(0, limit - len(marker))
    return text[:kept] + f"… ({len(text) - kept} more characters)"


def listing(parts: Sequence[str], limit: int, *, separator: str = ", ", noun: str = "") -> str:
    """`parts` joined by `separator` in at most `limit` characters: as many as fit, in order,
    then `"… and 37 more"` (with ` {noun}` after it when given) for the rest."""

    whole = separator.join(parts)
    if len(whole) <= limit:
        return whole

    def more(count: int) -> str:
        return f"… and {count} more{f' {noun}' if noun else ''}"

    shown = length = 0
    for count, part in enumerate(parts, start=1):
        length += (len(separator) if count > 1 else 0) + len(part)
        if length + len(separator) + len(more(len(parts) - count)) > limit:
            break
        shown = count
    if not shown:
        return more(len(parts))[:limit]
    return separator.join(parts[:shown]) + separator + more(len(parts) - shown)


def cut_utf8(data: bytes, limit: int) -> bytes:
    """The longest start of `data` of at most `limit` bytes that ends on a UTF-8 boundary
    (when `data` is UTF-8: no character is cut in half)."""
    if len(data) <= limit:
        return data
    end = start = max(0, limit)
    # data[end] is the first byte left out: when it continues a character (10xxxxxx), step
    # back to that character's first byte (at most 3 steps: UTF-8 characters are 1-4 bytes)
    while start > 0 and end - start < 3 and data[start] & 0xC0 == 0x80:
        start -= 1
    return data[:end] if data[start] & 0xC0 == 0x80 else data[:start]


def json_text_bytes(text: str) -> int:
    """Bytes `text` takes inside a JSON string as the codec writes it (escapes, UTF-8)."""
    return len(to_json(text)) - 2


def fit_json_text(text: str, limit: int) -> str:
    """The longest start of `text` whose JSON string form takes at most `limit` bytes."""
    if json_text_bytes(text) <= limit:
        return text
    low, high = 0, min(len(text), max(0, limit))  # every character takes at least one byte
    while low < high:
        middle = (low + high + 1) // 2
        if json_text_bytes(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    return text[:low]


__all__ = [
    "KAFKA_MAX_REQUEST_BYTES",
    "MAX_EVENT_BYTES",
    "MAX_RECORD_BYTES",
    "MAX_SOURCE_KEY_BYTES",
    "MESSAGE_CHARS",
    "REASON_CHARS",
    "cut_utf8",
    "fit_json_text",
    "json_text_bytes",
    "listing",
    "truncate",
]
