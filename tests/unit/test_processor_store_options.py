"""The processor's items table: RocksDB buffers bounded through the store's options."""

from __future__ import annotations

from pathlib import Path

from pipeline.processor.app import build_app
from pipeline.processor.config import ROCKSDB_OPTIONS, table_options
from pipeline.settings import Settings


def test_the_items_table_opens_rocksdb_with_bounded_buffers(tmp_path: Path) -> None:
    settings = Settings(
        kafka_bootstrap_servers="127.0.0.1:9", data_dir=str(tmp_path), processor_store="rocksdb"
    )
    processor = build_app(settings)
    store = processor.app.tables["items"].data
    options = store.rocksdb_options
    # faust's defaults: 64 MiB write buffers, three of them, and a 2 GiB block cache, per
    # partition; bounded, six partitions stay under 48 MiB of buffers
    assert options.write_buffer_size == ROCKSDB_OPTIONS["write_buffer_size"] <= 2 * 2**20
    assert options.max_write_buffer_number == ROCKSDB_OPTIONS["max_write_buffer_number"] <= 2
    assert options.block_cache_size == ROCKSDB_OPTIONS["block_cache_size"] <= 4 * 2**20
    db = options.open(tmp_path / "probe.db")  # the options are ones RocksDB accepts
    db[b"k"] = b"v"
    assert db[b"k"] == b"v"
    db.close()


def test_the_memory_store_takes_no_rocksdb_options() -> None:
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:9", processor_store="memory")
    assert table_options(settings) == {}
    first = table_options(Settings(kafka_bootstrap_servers="127.0.0.1:9"))
    first.pop("write_buffer_size")  # faust's store pops keys: each call is a fresh dict
    assert "write_buffer_size" in table_options(Settings(kafka_bootstrap_servers="127.0.0.1:9"))
