"""The processor's local table state: kept only while the broker's changelog backs it.

The rocksdb store keeps the items table on disk between runs, with the changelog offset it has
applied per partition ("persisted offset"). At start faust restores only what the changelog
holds past that offset, and refuses to start at all (`ConsistencyError`, the worker exits)
when the offset lies beyond the changelog's end. Two kinds of local state are therefore
dropped before faust starts, so that the table is rebuilt from the changelog instead:

- state left by a worker that did not shut down cleanly (`drop_unclean_state`): it may hold
  writes whose changelog records were never sent;
- state the changelog does not back (`drop_unbacked_state`): a new cluster, a recreated
  changelog, another topic prefix (the files are named after the table only), `dev` against a
  fresh broker. Detected per partition: the persisted offset at or past the changelog's end,
  or the changelog's record at that offset not being what the local state holds for its key.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from pipeline.kafka import make_consumer, stop_consumer
from pipeline.processor.config import APP_NAME, ITEMS_TABLE, state_dir
from pipeline.settings import ConfigurationError, Settings

log = logging.getLogger(__name__)

#: Written into the processor's state directory by a clean shutdown, removed at start.
CLEAN_SHUTDOWN_MARK = "clean-shutdown"
#: Where faust's rocksdb store keeps a partition's applied changelog offset.
OFFSET_KEY = b"__faust\0offset__"
#: How long the broker is given to answer each question about the changelog.
BROKER_TIMEOUT_S = 15.0


def hold_state_dir(settings: Settings) -> IO[bytes]:
    """Take the processor's local state for this process alone, for as long as it runs.

    Two processors sharing one `DATA_DIR` would each treat the other's files as their own: the
    second one to start finds no clean-shutdown mark, deletes the state the first is using,
    and marks it clean when it stops. The lock (`flock`, released by the kernel when the
    process exits, however it exits) sits beside the state directory, not in it, because
    dropping the state deletes that directory. Keep the returned file open.

    Raises ConfigurationError when another process holds it.
    """
    directory = state_dir(settings)
    directory.parent.mkdir(parents=True, exist_ok=True)
    lock = (directory.parent / f"{directory.name}.lock").open("ab")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise ConfigurationError(
            f"another processor is using the local table state in {directory} "
            f"(DATA_DIR={settings.data_dir}): give each processor on one host its own DATA_DIR"
        ) from None
    return lock


def drop_unclean_state(settings: Settings) -> bool:
    """Delete local table state unless the last worker using it shut down cleanly.

    The rocksdb store writes an item's state locally before its changelog record is sent; a
    worker killed in between leaves local state the changelog lacks, which would then differ
    from what any other instance restores. Without the clean-shutdown mark the state is
    dropped and restored from the changelog. Returns whether it was dropped.
    """
    directory = state_dir(settings)
    mark = directory / CLEAN_SHUTDOWN_MARK
    dropped = False
    if directory.is_dir() and not mark.exists() and any(directory.iterdir()):
        log.warning("%s: no clean shutdown recorded; restoring from the changelog", directory)
        shutil.rmtree(directory)
        dropped = True
    mark.unlink(missing_ok=True)
    return dropped


def mark_clean_shutdown(settings: Settings) -> None:
    """Record that the local state is complete (every write's changelog record was sent)."""
    directory = state_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CLEAN_SHUTDOWN_MARK).touch()


@dataclass(frozen=True)
class ChangelogRecord:
    """A changelog record as the check needs it (value None: a deletion)."""

    offset: int
    key: bytes | None
    value: bytes | None


def unbacked(
    persisted: Mapping[int, int],
    ends: Mapping[int, int],
    records: Mapping[int, ChangelogRecord | None],
    local: Mapping[int, bytes | None],
) -> list[str]:
    """Why the local state of each partition is not the changelog's, if it is not ([] if it is).

    `persisted`: partition → changelog offset the local state has applied; `ends`: partition →
    the changelog's end offset; `records`: partition → the changelog's first record at or
    after the persisted offset (None: none read); `local`: partition → the local value of
    that record's key. A record found past the persisted offset (compaction removed the one
    at it) proves nothing either way.
    """
    reasons = []
    for partition, offset in sorted(persisted.items()):
        end = ends.get(partition)
        if end is None:
            reasons.append(f"partition {partition}: the changelog has no such partition")
        elif offset >= end:
            reasons.append(
                f"partition {partition}: local state has applied offset {offset}, "
                f"the changelog ends at {end}"
            )
        elif _differs(records.get(partition), offset, local.get(partition)):
            reasons.append(
                f"partition {partition}: the changelog's record at offset {offset} is not "
                "what the local state holds"
            )
    return reasons


def _differs(record: ChangelogRecord | None, offset: int, local: bytes | None) -> bool:
    """Whether the changelog's record at `offset` disagrees with the local value of its key."""
    return record is not None and record.offset == offset and record.value != local


def tables_dir(settings: Settings) -> Path:
    """Where faust's rocksdb store keeps the table files (faust's own `tabledir`)."""
    from faust.types.settings import Settings as FaustSettings

    conf = FaustSettings(settings.group(APP_NAME), datadir=str(state_dir(settings)))
    return Path(conf.tabledir)


def partition_files(settings: Settings) -> dict[int, Path]:
    """Partition → the rocksdb directory of the items table's partition, where one exists."""
    pattern = re.compile(rf"{re.escape(ITEMS_TABLE)}-(\d+)\.db")
    directory = tables_dir(settings)
    if not directory.is_dir():
        return {}
    return {
        int(match.group(1)): path
        for path in directory.iterdir()
        if (match := pattern.fullmatch(path.name)) and path.is_dir()
    }


class Unreadable(RuntimeError):
    """A partition's rocksdb files cannot be read (rocksdict raises plain Exceptions)."""


def _read_local(path: Path, key: bytes) -> bytes | None:
    """One value of a partition's rocksdb files, opened read-only (faust is not running).

    Raises Unreadable when rocksdb cannot open or read them.
    """
    from rocksdict import AccessType, Options, Rdict

    try:
        db = Rdict(str(path), options=Options(raw_mode=True), access_type=AccessType.read_only())
    except Exception as exc:
        raise Unreadable(f"{path.name}: {exc}") from exc
    try:
        value = db.get(key)
    except Exception as exc:
        raise Unreadable(f"{path.name}: {exc}") from exc
    finally:
        db.close()
    return bytes(value) if value is not None else None


async def _read_changelog(
    settings: Settings, persisted: Mapping[int, int]
) -> tuple[dict[int, int], dict[int, ChangelogRecord | None]]:
    """The changelog's end offsets, and its first record at or after each persisted offset."""
    topic = settings.topic(f"{APP_NAME}-{ITEMS_TABLE}-changelog")
    consumer = make_consumer(settings, group_id=None)
    await asyncio.wait_for(consumer.start(), BROKER_TIMEOUT_S)
    try:
        await asyncio.wait_for(consumer.topics(), BROKER_TIMEOUT_S)  # fresh metadata
        known = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(known)]
        ends: dict[int, int] = {}
        if tps:
            found = await asyncio.wait_for(consumer.end_offsets(tps), BROKER_TIMEOUT_S)
            ends = {tp.partition: int(end) for tp, end in found.items()}
        records: dict[int, ChangelogRecord | None] = {}
        for partition, offset in persisted.items():
            if offset < ends.get(partition, 0):
                tp = TopicPartition(topic, partition)
                records[partition] = await _record_at(consumer, tp, offset)
        return ends, records
    finally:
        await stop_consumer(consumer)


async def _record_at(
    consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int
) -> ChangelogRecord | None:
    """The first record at or after `offset` (None if none arrives within the timeout)."""
    consumer.assign([tp])
    consumer.seek(tp, offset)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BROKER_TIMEOUT_S
    while loop.time() < deadline:
        batches = await consumer.getmany(tp, timeout_ms=200, max_records=1)
        for found in batches.values():
            if found:
                record = found[0]
                return ChangelogRecord(int(record.offset), record.key, record.value)
    return None


async def drop_unbacked_state(settings: Settings) -> bool:
    """Delete the local table state if the broker's changelog does not back it (see module).

    Only for the rocksdb store, after `drop_unclean_state`. Returns whether it was dropped.
    A broker that cannot answer leaves the state as it is (with a warning): faust's own
    check then runs as before.
    """
    if settings.processor_store != "rocksdb":
        return False
    files = partition_files(settings)
    try:
        persisted = {
            partition: int(offset)
            for partition, path in files.items()
            if (offset := _read_local(path, OFFSET_KEY)) is not None
        }
        if not persisted:
            return False
        try:
            ends, records = await _read_changelog(settings, persisted)
        except (KafkaError, TimeoutError) as exc:
            log.warning("could not compare local table state with the changelog (%r); kept", exc)
            return False
        local = {
            partition: _read_local(files[partition], record.key)
            for partition, record in records.items()
            if record is not None and record.key is not None
        }
        reasons = unbacked(persisted, ends, records, local)
    except Unreadable as exc:  # the changelog rebuilds them too
        reasons = [f"its files cannot be read ({exc})"]
    if not reasons:
        log.info("local table state matches the changelog; kept")
        return False
    directory = state_dir(settings)
    log.warning(
        "%s: local table state is not the changelog's (%s); dropping it, the table is "
        "restored from the changelog",
        directory,
        "; ".join(reasons),
    )
    shutil.rmtree(directory)
    return True


__all__ = [
    "CLEAN_SHUTDOWN_MARK",
    "ChangelogRecord",
    "Unreadable",
    "drop_unbacked_state",
    "drop_unclean_state",
    "mark_clean_shutdown",
    "partition_files",
    "tables_dir",
    "unbacked",
]
