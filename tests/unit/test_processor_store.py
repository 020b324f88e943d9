"""The default install runs the default configuration; a store that cannot be used is named."""

from __future__ import annotations

import importlib.metadata
import logging
import sys

import pytest
from packaging.requirements import Requirement

from pipeline.processor.worker import check_store
from pipeline.settings import ConfigurationError, Settings


def _core_requirements() -> set[str]:
    """Names of the packages `pip install erp-pipeline` installs (no extra asked for)."""
    return {
        requirement.name
        for line in importlib.metadata.requires("erp-pipeline") or []
        if (requirement := Requirement(line)).marker is None
    }


def test_the_default_store_is_installed_without_any_extra() -> None:
    assert Settings.model_fields["processor_store"].default == "rocksdb"
    assert "rocksdict" in _core_requirements()


def test_the_rocksdb_extra_still_exists_for_existing_install_commands() -> None:
    extras = importlib.metadata.metadata("erp-pipeline").get_all("Provides-Extra") or []
    assert "rocksdb" in extras


def test_a_rocksdb_store_without_rocksdict_is_refused_naming_package_and_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "rocksdict", None)  # `import rocksdict` raises ImportError
    with pytest.raises(ConfigurationError) as info:
        check_store(Settings(kafka_bootstrap_servers="127.0.0.1:1", processor_store="rocksdb"))
    message = str(info.value)
    assert "rocksdict" in message and "PROCESSOR_STORE" in message and "memory" in message


def test_the_memory_store_needs_no_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rocksdict", None)
    check_store(Settings(kafka_bootstrap_servers="127.0.0.1:1", processor_store="memory"))


def test_the_installed_rocksdb_store_is_accepted() -> None:
    check_store(Settings(kafka_bootstrap_servers="127.0.0.1:1", processor_store="rocksdb"))


def test_fausts_producer_buffer_warnings_are_dropped_and_nothing_else(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every batch of more than 100 records made faust warn "producer buffer full size N"."""
    from pipeline.processor.worker import quiet_buffer_warnings

    quiet_buffer_warnings()
    quiet_buffer_warnings()  # once is enough, twice changes nothing
    logger = logging.getLogger("faust.transport.producer")
    with caplog.at_level(logging.WARNING, logger="faust.transport.producer"):
        logger.warning("producer buffer full size 268")
        logger.warning("something else")
    assert [r.getMessage() for r in caplog.records] == ["something else"]
    assert len(logger.filters) == 1
