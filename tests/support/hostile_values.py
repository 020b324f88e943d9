"""Hostile JSON: odd text, numbers, dates and shapes, and valid events mutated into bad ones.

Values are raw JSON *fragments* (bytes), spliced into an event's text, so that they can be
what no JSON library writes: NaN, 10**400, duplicate keys, unescaped control characters,
bytes that are not UTF-8, lone surrogates, nesting 100 000 deep.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from topics import MAX_EVENT_BYTES

#: Characters that break naive text handling: C0/C1 controls (NUL first), invisible and
#: direction marks, line separators, BOM, lone surrogates, non-ASCII letters and digits.
ODD_CHARS = (
    *("\x00", "\x01", "\x08", "\t", "\n", "\r", "\x1b", "\x1f", "\x7f", "\x85", "\x9f"),
    *("\u00a0", "\u200b", "\u200d", "\u200e", "\u200f", "\u202a", "\u202e", "\u2066"),
    *("\u2028", "\u2029", "\ufeff", "\ufffd", "\uffff", "\ud800", "\udfff"),
    *("\U0001f4a9", "\U000e0041", "e\u0301", "\u00df", "\u0130", "\ufb01", "\u042f", "\u4e2d"),
    *("\u0627", "\u0939", "\u0663", "\u06f3", "\u0967", "\uff11", "\U0001d7d7", "\u216b"),
    *("'", '"', "\\", "<", ">", "&", ";", ":", "@", "%s", "{0}", "${x}", "../", "%00"),
)
#: Lengths past the contract's limits: a long field, a big value, one past the event limit.
HUGE_LENGTHS = (2_001, 2_001, 70_000, MAX_EVENT_BYTES + 1)
#: Timestamps and dates at and past the edges (year 1, year 9999, odd or missing offsets).
ODD_TIMES = (
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+14:00",  # before year 1 once in UTC
    "9999-12-31T23:59:59.999999Z",
    "9999-12-31T23:59:59-14:00",  # after year 9999 once in UTC
    "1970-01-01T00:00:00Z",
    "2026-11-21T10:00:00+23:59",
    "2026-11-21T10:00:00+24:00",
    "2026-11-21T10:00:00-00:00",
    "2026-11-21T10:00:00",
    "2026-11-21T10:00:00.123456789Z",
    "2026-11-21t10:00:00z",
    "2026-11-21 10:00:00Z",
    "2026-02-29T10:00:00Z",
    "2026-11-21T24:00:00Z",
    "2026-11-21T23:59:60Z",
    "+12026-11-21T10:00:00Z",
    "2026-11-21",
    "0000-00-00",
    "9999-12-31",
    "0001-01-01",
    "",
)
#: Number literals a strict parser refuses or a model cannot hold.
ODD_NUMBERS = (
    *(b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-0", b"-0.0", b"0.1", b"1E2", b"01"),
    *(b"2147483648", b"9223372036854775808", b"-9223372036854775809", b"18446744073709551616"),
    *(b"9" * 400, b"9" * 4301, b"0x10", b"1_000", b"+1", b".5", b"5."),
)

#: Not JSON, or not what a JSON library writes: raw control characters and bytes that are not
#: UTF-8 in strings, escapes of nothing or of a lone surrogate, a duplicate key, bad syntax.
RAW_FRAGMENTS = (
    *(b'"a\x00b"', b'"\n"', b'"\xff\xfe"', b'"\\x41"', b'"\\ud800"', b"'a'"),
    *(b'{"a":1,"a":2}', b"tru", b"[1,]", b'"unterminated', b"}", b""),
)


@st.composite
def hostile_texts(draw: Any, base: str = "") -> str:
    """Text with odd characters put into `base` (or into a sample word), or odd text alone."""
    kind = draw(st.sampled_from(("inserted",) * 5 + ("free", "free", "blank", "huge")))
    if kind == "free":
        return str(draw(st.text(max_size=12)))
    if kind == "blank":
        return str(draw(st.sampled_from(("", " ", "\t", "\u3000", "\x00"))))
    word = base or draw(st.sampled_from(("acme", "u-ana", "ana@acme.example", "SC-200", "1.00")))
    if kind == "huge":  # past the event limit in ASCII only: escaped, others grow sixfold
        length = draw(st.sampled_from(HUGE_LENGTHS))
        units = ("x", word) if length > MAX_EVENT_BYTES else ("x", "\u00e9", "\x00", "\U0001f4a9")
        unit = draw(st.sampled_from(units))
        return str(unit * (length // len(unit) + 1))
    odd = "".join(draw(st.lists(st.sampled_from(ODD_CHARS), min_size=1, max_size=4)))
    at = draw(st.integers(0, len(word)))
    return word[:at] + odd + word[at:]


def json_text(text: str, ascii_only: bool) -> bytes:
    """A JSON string literal; lone surrogates escaped (`ascii_only`) or raw (not UTF-8)."""
    return json.dumps(text, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def _text_of(fragment: bytes) -> str:
    """The text of a JSON string literal ("" for anything else, an earlier hostile one too)."""
    try:
        value = json.loads(fragment.decode("utf-8", "surrogatepass"))
    except (ValueError, RecursionError):  # not UTF-8, not JSON, nested too deep
        return ""
    return value if isinstance(value, str) else ""


def _nested(depth: int, kind: str) -> bytes:
    if kind == "list":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


@st.composite
def fragments(draw: Any, original: bytes = b'""') -> bytes:
    """A hostile JSON fragment for a value whose valid form was `original`."""
    kind = draw(
        st.sampled_from(("text", "number", "time", "type", "raw", "nested", "wide", "edited"))
    )
    if kind == "text" or kind == "edited":
        base = _text_of(original) if kind == "edited" else ""
        return json_text(draw(hostile_texts(base)), draw(st.booleans()))
    if kind == "number":
        literal = draw(
            st.one_of(
                st.sampled_from(ODD_NUMBERS),
                st.integers(-(2**70), 2**70).map(lambda n: str(n).encode()),
                st.floats().map(lambda f: json.dumps(f).encode()),
            )
        )
        return bytes(literal)
    if kind == "time":
        return json_text(draw(st.sampled_from(ODD_TIMES)), True)
    if kind == "type":
        return bytes(
            draw(st.sampled_from((b"null", b"true", b"false", b"[]", b"{}", b'"1"', b"1", b"[1]")))
        )
    if kind == "raw":
        return bytes(draw(st.sampled_from(RAW_FRAGMENTS)))
    if kind == "nested":
        depth = draw(st.sampled_from((100, 1_000, 100_000)))
        return _nested(depth, draw(st.sampled_from(("list", "object"))))
    count = draw(st.sampled_from((1_000, 1_000, 50_000)))  # wide: many small elements
    element = original if len(original) <= 8 else b"0"
    if draw(st.booleans()):
        return b"[" + b",".join([element] * count) + b"]"
    return b"{" + b",".join(b'"k%d":%s' % (i, element) for i in range(count)) + b"}"


# --- a JSON document as a tree that can hold what dicts cannot (duplicate or raw keys) ------


@dataclass
class Obj:
    """A JSON object as ordered (raw key literal, value) pairs; keys may repeat."""

    pairs: list[tuple[bytes, Node]] = field(default_factory=list)


Node = Obj | list[Any] | bytes  # bytes: a raw JSON fragment
Path = tuple[int, ...]


def tree(value: Any) -> Node:
    """The tree of a JSON-ready Python value."""
    if isinstance(value, dict):
        return Obj([(json.dumps(k).encode(), tree(v)) for k, v in value.items()])
    if isinstance(value, list):
        return [tree(v) for v in value]
    return json.dumps(value).encode()


def render(node: Node) -> bytes:
    """The JSON text of a tree, exactly as its fragments say."""
    if isinstance(node, Obj):
        return b"{" + b",".join(k + b":" + render(v) for k, v in node.pairs) + b"}"
    if isinstance(node, list):
        return b"[" + b",".join(render(v) for v in node) + b"]"
    return node


def paths(node: Node, at: Path = ()) -> list[Path]:
    """Every path below the root (index of a pair in an object, or of an element in a list)."""
    children = node.pairs if isinstance(node, Obj) else node if isinstance(node, list) else []
    found: list[Path] = []
    for i, child in enumerate(children):
        value = child[1] if isinstance(node, Obj) else child
        found.append((*at, i))
        found.extend(paths(value, (*at, i)))
    return found


def _at(node: Node, path: Path) -> Node:
    for i in path:
        node = node.pairs[i][1] if isinstance(node, Obj) else node[i]  # type: ignore[index]
    return node


def _set(parent: Node, i: int, value: Node) -> None:
    if isinstance(parent, Obj):
        parent.pairs[i] = (parent.pairs[i][0], value)
    else:
        parent[i] = value  # type: ignore[index]


def _hostile_key(draw: Any) -> bytes:
    name = draw(st.sampled_from(("event_id", "payload", "item", "id", "x", "")))
    return json_text(draw(hostile_texts(name)), draw(st.booleans()))


def _mutate(draw: Any, root: Obj) -> str:
    """Apply one drawn mutation to the tree in place; say what it did."""
    where = draw(st.sampled_from(paths(root)))
    parent, i = _at(root, where[:-1]), where[-1]
    name = (
        parent.pairs[i][0].decode("utf-8", "replace")[:40] if isinstance(parent, Obj) else f"[{i}]"
    )
    how = draw(st.sampled_from(("replace", "replace", "delete", "rename", "extra", "duplicate")))
    if how == "replace":
        original = _at(root, where)
        _set(parent, i, draw(fragments(original if isinstance(original, bytes) else b'""')))
    elif how == "delete":
        if isinstance(parent, Obj):
            del parent.pairs[i]
        else:
            del parent[i]  # type: ignore[union-attr]
    elif not isinstance(parent, Obj):
        parent.append(draw(fragments()))  # type: ignore[union-attr]
        how = "append"
    elif how == "rename":
        parent.pairs[i] = (_hostile_key(draw), parent.pairs[i][1])
    elif how == "extra":
        parent.pairs.append((_hostile_key(draw), draw(fragments())))
    else:  # the same key twice, the hostile value first or last
        copy = (parent.pairs[i][0], draw(fragments()))
        parent.pairs.insert(i + draw(st.integers(0, 1)), copy)
    return f"{how} {name}"


#: Whole-value changes: (name, function of the rendered event).
WHOLE: tuple[tuple[str, Callable[[bytes], bytes | None]], ...] = (
    ("as is", lambda v: v),
    ("null value", lambda v: None),
    ("empty", lambda v: b""),
    ("BOM", lambda v: b"\xef\xbb\xbf" + v),
    ("UTF-16", lambda v: v.decode("utf-8", "surrogateescape").encode("utf-16", "surrogatepass")),
    ("truncated", lambda v: v[: len(v) // 2]),
    ("trailing junk", lambda v: v + b"}garbage"),
    ("two objects", lambda v: v + v),
    ("in a list", lambda v: b"[" + v + b"]"),
    ("padded", lambda v: b" \n\t" + v + b"\r\n"),
    ("a string", lambda v: json.dumps(v.decode("utf-8", "replace")).encode()),
    ("1 MiB of NUL", lambda v: b"\x00" * MAX_EVENT_BYTES),  # sixfold once escaped as text
)


@st.composite
def mutated(draw: Any, event: dict[str, Any]) -> tuple[bytes | None, str]:
    """A valid event (a JSON-ready dict) made hostile: 0-3 mutations of its tree, then, for
    about one in four, a whole-value change. Returns the value and what was done to it."""
    root = tree(event)
    assert isinstance(root, Obj)
    done = [_mutate(draw, root) for _ in range(draw(st.integers(0, 3)))]
    # most records stay one JSON object, so that what is hostile inside them gets read
    name, whole = draw(st.sampled_from(WHOLE)) if draw(st.integers(0, 3)) == 0 else WHOLE[0]
    if name != "as is" or not done:
        done.append(name)
    return whole(render(root)), "; ".join(done)
