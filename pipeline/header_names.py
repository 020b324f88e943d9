"""Reading record batches whose header names are not UTF-8, which aiokafka 0.14 cannot parse.

Kafka's protocol types a header name as a UTF-8 string, but brokers do not check it and
clients that take header names as bytes (kcat's `-H`, librdkafka's C API) can send any
bytes. aiokafka decodes header names strictly while it unpacks a fetched batch, so one such
record raises `UnicodeDecodeError` out of `getmany` (and out of faust's consumer) for the
whole fetch: every worker reading that partition stops, and so does each instance that takes
the partition over.

`install()` wraps the record buffer type aiokafka's fetcher unpacks fetch responses with.
Batches are parsed as before, by aiokafka's C extension where it is built; only a batch whose
parse raises `UnicodeDecodeError` is parsed again by a copy of aiokafka's pure-Python record
reader that decodes header names with `surrogateescape`. The records of that batch already
returned are not returned twice. The workers then refuse such a record at the decode stage
(`topics.record.Record.header_error`), so it is dead-lettered like any other malformed
record and the partition goes on.

The wrapper relies on aiokafka's fetcher internals, so it checks the version it was written
against (`AIOKAFKA_VERSION`) and refuses to install on another one: bumping the pin means
re-reading `aiokafka/record/default_records.py` (`_read_msg`) and
`aiokafka/consumer/fetcher.py` (its use of `MemoryRecords`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import Any

import aiokafka
from aiokafka.consumer import fetcher
from aiokafka.errors import CorruptRecordException
from aiokafka.record.default_records import _DefaultRecordBatchPy, _DefaultRecordPy
from aiokafka.record.util import decode_varint

#: The aiokafka release this module was written against (pinned in pyproject.toml).
AIOKAFKA_VERSION = "0.14.0"
#: Bytes before a batch's records length field, and the framing every batch starts with.
_LENGTH_OFFSET, _LOG_OVERHEAD, _MAGIC_OFFSET = 8, 12, 16


class _LenientBatchPy(_DefaultRecordBatchPy):  # type: ignore[misc]
    """aiokafka's pure-Python batch reader with header names decoded with `surrogateescape`.

    `_read_msg` is aiokafka 0.14.0's (Apache License 2.0), changed in one line.
    """

    def _read_msg(
        self, decode_varint: Callable[[bytearray, int], tuple[int, int]] = decode_varint
    ) -> _DefaultRecordPy:
        buffer = self._buffer
        pos: int = self._pos  # type: ignore[has-type]
        length, pos = decode_varint(buffer, pos)
        start_pos = pos
        _, pos = decode_varint(buffer, pos)  # attributes
        ts_delta, pos = decode_varint(buffer, pos)
        if self.timestamp_type == self.LOG_APPEND_TIME:
            timestamp = self.max_timestamp
        else:
            timestamp = self.first_timestamp + ts_delta
        offset_delta, pos = decode_varint(buffer, pos)
        offset = self.base_offset + offset_delta
        key_len, pos = decode_varint(buffer, pos)
        key = None
        if key_len >= 0:
            key = bytes(buffer[pos : pos + key_len])
            pos += key_len
        value_len, pos = decode_varint(buffer, pos)
        value = None
        if value_len >= 0:
            value = bytes(buffer[pos : pos + value_len])
            pos += value_len
        header_count, pos = decode_varint(buffer, pos)
        if header_count < 0:
            raise CorruptRecordException(f"Found invalid number of record headers {header_count}")
        headers: list[tuple[str, bytes | None]] = []
        while header_count:
            h_key_len, pos = decode_varint(buffer, pos)
            if h_key_len < 0:
                raise CorruptRecordException(f"Invalid negative header key size {h_key_len}")
            # The one change: bytes that are not UTF-8 become lone surrogates, not an error.
            h_key = buffer[pos : pos + h_key_len].decode("utf-8", "surrogateescape")
            pos += h_key_len
            h_value_len, pos = decode_varint(buffer, pos)
            h_value = None
            if h_value_len >= 0:
                h_value = bytes(buffer[pos : pos + h_value_len])
                pos += h_value_len
            headers.append((h_key, h_value))
            header_count -= 1
        if pos - start_pos != length:
            raise CorruptRecordException(
                f"Invalid record size: expected to read {length} bytes in record "
                f"payload, but instead read {pos - start_pos}"
            )
        self._pos = pos
        return _DefaultRecordPy(offset, timestamp, self.timestamp_type, key, value, headers)


class _Batch:
    """One v2 record batch: aiokafka's own reader, and the lenient one if that one fails."""

    def __init__(self, batch: Any, raw: memoryview) -> None:
        self._batch, self._raw = batch, raw

    def __getattr__(self, name: str) -> Any:
        return getattr(self._batch, name)

    def __iter__(self) -> Iterator[Any]:
        returned = -1
        try:
            for record in self._batch:
                returned = record.offset
                yield record
            return
        except UnicodeDecodeError:  # aiokafka's C reader
            pass
        except CorruptRecordException as exc:  # its pure-Python reader wraps the decode error
            if not isinstance(exc.__cause__, UnicodeDecodeError):
                raise
        for record in _LenientBatchPy(self._raw):
            if record.offset > returned:
                yield record


class _MemoryRecords:
    """aiokafka's `MemoryRecords` over a fetch response's records, its v2 batches wrapped.

    aiokafka returns the batches in order, each the `LOG_OVERHEAD + length` bytes after the
    last, so this follows along to hand each batch its own bytes.
    """

    def __init__(self, data: bytes) -> None:
        self._records = _ORIGINAL(data)
        self._data = memoryview(data)
        self._pos = 0

    def size_in_bytes(self) -> int:
        return int(self._records.size_in_bytes())

    def has_next(self) -> bool:
        return bool(self._records.has_next())

    def next_batch(self) -> Any:
        batch = self._records.next_batch()
        if batch is None:
            return None
        start = self._pos
        (length,) = struct.unpack_from(">i", self._data, start + _LENGTH_OFFSET)
        self._pos = start + _LOG_OVERHEAD + length
        if self._data[start + _MAGIC_OFFSET] < 2 or batch.is_control_batch:
            return batch  # no headers in the old formats; control records are aiokafka's own
        return _Batch(batch, self._data[start : self._pos])


_ORIGINAL: Any = fetcher.MemoryRecords


def install() -> None:
    """Make aiokafka's fetcher (and so faust's consumer) read batches through `_MemoryRecords`.

    Idempotent. Raises `RuntimeError` on an aiokafka release other than `AIOKAFKA_VERSION`.
    """
    if aiokafka.__version__ != AIOKAFKA_VERSION:
        raise RuntimeError(
            f"pipeline.header_names was written for aiokafka {AIOKAFKA_VERSION}, not "
            f"{aiokafka.__version__}: re-read it against the new release before bumping the pin"
        )
    fetcher.MemoryRecords = _MemoryRecords
