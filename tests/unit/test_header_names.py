"""Record batches with header names that are not UTF-8: read, not failed (pipeline.header_names)."""

from __future__ import annotations

from typing import Any

import aiokafka
import pytest
from aiokafka.consumer import fetcher
from aiokafka.record import default_records
from aiokafka.record.default_records import _DefaultRecordBatchBuilderPy

from pipeline import header_names
from pipeline.header_names import _MemoryRecords
from topics import DecodeError
from topics.record import Record, decode_record, header_error
from topics.specs import SUBMISSIONS

GZIP = _DefaultRecordBatchBuilderPy.CODEC_GZIP
NONE = 0


class _Name(str):
    """A header name that encodes to whatever bytes it is given (as a client taking bytes)."""

    raw: bytes

    def __new__(cls, raw: bytes) -> _Name:
        name = super().__new__(cls, "x")
        name.raw = raw
        return name

    def encode(self, *args: Any, **kwargs: Any) -> bytes:  # type: ignore[override]
        return self.raw


def _batch(base: int, names: list[bytes], compression: int = NONE) -> bytes:
    """A v2 batch of one record per name, at offsets `base`, `base + 1`, ..."""
    builder = _DefaultRecordBatchBuilderPy(2, compression, 0, -1, -1, -1, 1 << 20)
    for n, name in enumerate(names):
        builder.append(n, 1_700_000_000_000, b"k%d" % n, b"v%d" % n, [(_Name(name), b"h")])
    built = bytearray(builder.build())
    built[0:8] = base.to_bytes(8, "big")  # the broker assigns the base offset
    return bytes(built)


def _read(data: bytes) -> list[tuple[int, bytes, list[tuple[str, bytes | None]]]]:
    records = _MemoryRecords(data)
    found = []
    while records.has_next():
        batch = records.next_batch()
        assert batch is not None and batch.validate_crc()
        found += [(r.offset, r.value, list(r.headers)) for r in batch]
    return found


@pytest.mark.parametrize("compression", [NONE, GZIP], ids=["plain", "gzip"])
def test_a_batch_with_a_header_name_that_is_not_utf8_is_read_whole(compression: int) -> None:
    data = _batch(40, [b"ok", b"\xff\xfe", b"fine"], compression) + _batch(43, [b"next"])
    found = _read(data)
    assert [(offset, value) for offset, value, _ in found] == [
        (40, b"v0"),
        (41, b"v1"),
        (42, b"v2"),
        (43, b"v0"),
    ]
    names = [headers[0][0] for _, _, headers in found]
    assert names == ["ok", "\udcff\udcfe", "fine", "next"]


def test_records_returned_before_the_unreadable_one_are_not_returned_twice() -> None:
    found = _read(_batch(0, [b"a", b"b", b"\x80", b"c"]))
    assert [offset for offset, _, _ in found] == [0, 1, 2, 3]


def test_batches_aiokafka_can_read_are_read_by_aiokafka_itself() -> None:
    batch = _MemoryRecords(_batch(7, [b"a", b"b"])).next_batch()
    assert batch is not None
    records = list(batch)
    assert {type(r).__module__ for r in records} == {default_records.DefaultRecordBatch.__module__}


def test_aiokafka_itself_still_fails_such_a_batch() -> None:
    """Why the wrapper exists: when this fails, aiokafka reads such names and it can go."""
    batch = header_names._ORIGINAL(_batch(0, [b"\xff"])).next_batch()
    with pytest.raises((UnicodeDecodeError, aiokafka.errors.CorruptRecordException)):
        list(batch)


def test_install_wraps_the_fetchers_records_and_refuses_another_aiokafka(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    header_names.install()
    assert fetcher.MemoryRecords is _MemoryRecords
    monkeypatch.setattr(aiokafka, "__version__", "0.15.0")
    with pytest.raises(RuntimeError, match=r"aiokafka 0\.14\.0, not 0\.15\.0"):
        header_names.install()


def test_a_record_with_such_a_header_name_is_refused_at_decode_naming_it() -> None:
    ((offset, value, headers),) = _read(_batch(0, [b"caf\xe9"]))
    record = Record("erp.submissions", 0, offset, b"k", value, 0, header_error(headers))
    with pytest.raises(DecodeError, match=r"header name b'caf\\xe9' is not UTF-8"):
        decode_record(record, SUBMISSIONS)


def test_header_names_that_are_utf8_or_absent_are_no_error() -> None:
    assert header_error([("event_type", b"x"), ("k\u00e9y", None), ("", b"")]) is None
    assert header_error(None) is None
    assert header_error({"schema_version": b"1"}) is None
    long = header_error([("\udcff" * 100, b"")])
    assert long is not None and long.endswith("... (100 bytes) is not UTF-8")
