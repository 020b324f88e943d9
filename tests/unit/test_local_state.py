"""Local table state the changelog does not back: the rule, and reading faust's rocksdb files."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rocksdict import Options, Rdict

from pipeline.processor.local_state import (
    OFFSET_KEY,
    ChangelogRecord,
    drop_unbacked_state,
    partition_files,
    tables_dir,
    unbacked,
)
from pipeline.settings import Settings


def test_state_past_the_changelog_end_is_unbacked() -> None:
    reasons = unbacked({0: 4, 1: 2}, {0: 0, 1: 9}, {1: ChangelogRecord(2, b"k", b"v")}, {1: b"v"})
    assert reasons == ["partition 0: local state has applied offset 4, the changelog ends at 0"]


def test_state_at_the_changelog_end_is_unbacked() -> None:
    # the persisted offset is the last record applied: the changelog must hold it
    assert unbacked({0: 5}, {0: 5}, {}, {}) != []


def test_a_partition_the_changelog_lacks_is_unbacked() -> None:
    assert unbacked({7: 0}, {0: 3}, {}, {}) == ["partition 7: the changelog has no such partition"]


def test_a_different_record_at_the_persisted_offset_is_unbacked() -> None:
    record = ChangelogRecord(3, b"acme:project:p-1", b"theirs")
    assert unbacked({0: 3}, {0: 10}, {0: record}, {0: b"ours"}) == [
        "partition 0: the changelog's record at offset 3 is not what the local state holds"
    ]


def test_the_same_record_or_a_deletion_both_sides_is_backed() -> None:
    same = ChangelogRecord(3, b"k", b"state")
    deleted = ChangelogRecord(8, b"k2", None)
    assert unbacked({0: 3, 1: 8}, {0: 10, 1: 9}, {0: same, 1: deleted}, {0: b"state"}) == []


def test_a_compacted_offset_proves_nothing() -> None:
    later = ChangelogRecord(6, b"k", b"newer")
    assert unbacked({0: 3}, {0: 10}, {0: later}, {0: b"older"}) == []


def _partition_db(settings: Settings, partition: int, entries: dict[bytes, bytes]) -> Path:
    """A partition's table files as faust's rocksdb store leaves them (raw bytes)."""
    path = tables_dir(settings) / f"items-{partition}.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    db = Rdict(str(path), options=Options(raw_mode=True))
    for key, value in entries.items():
        db[key] = value
    db.close()
    return path


def test_faust_table_files_are_found_where_faust_puts_them(tmp_path: Path) -> None:
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:1", data_dir=str(tmp_path))
    path = _partition_db(settings, 3, {OFFSET_KEY: b"41", b"acme:project:p-1": b"{}"})
    (tables_dir(settings) / "items-backups").mkdir()
    assert tables_dir(settings) == tmp_path / "processor" / "v1" / "tables"
    assert partition_files(settings) == {3: path}


def test_the_memory_store_has_no_local_state_to_check(tmp_path: Path) -> None:
    settings = Settings(
        kafka_bootstrap_servers="127.0.0.1:1", data_dir=str(tmp_path), processor_store="memory"
    )
    _partition_db(settings, 0, {OFFSET_KEY: b"9"})
    assert asyncio.run(drop_unbacked_state(settings)) is False
    assert partition_files(settings)  # untouched


def test_unreadable_table_files_are_dropped(tmp_path: Path) -> None:
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:1", data_dir=str(tmp_path))
    path = tables_dir(settings) / "items-0.db"
    path.mkdir(parents=True)
    (path / "CURRENT").write_text("garbage")  # no trailing newline: rocksdb calls it corrupt
    assert asyncio.run(drop_unbacked_state(settings)) is True
    assert not path.exists()
