"""The company directory as the console sees it: erp.directory read from the beginning, in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka.errors import KafkaError

from pipeline.kafka import make_consumer, partitions_of, stop_consumer
from pipeline.rules.directory import Directory
from pipeline.settings import Settings
from topics.codec import decode
from topics.errors import ContractError
from topics.events import ApproverUpdated, CompanySettingsUpdated
from topics.specs import DIRECTORY

log = logging.getLogger(__name__)


class DirectoryReplica:
    """Keeps a `Directory` (the processor's own rules class) up to date from erp.directory.

    Each partition is read in offset order, so every entry's latest version is the one the
    processor judges by. Records that break the contract are skipped (the processor
    dead-letters them). `caught_up` is set once what the topic held at start is applied.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.directory = Directory()
        self.caught_up = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def apply(self, event: ApproverUpdated | CompanySettingsUpdated) -> None:
        """Apply one directory event (what the reader does; tests may feed it directly)."""
        self.directory.apply(event)

    async def start(self) -> None:
        """Start reading in the background."""
        self._task = asyncio.create_task(self._read_forever())

    async def stop(self) -> None:
        """Stop reading."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _read_forever(self) -> None:
        while True:
            try:
                await self._read()
            except KafkaError as exc:
                log.warning("erp.directory unreadable, reading again: %r", exc)
                await asyncio.sleep(1.0)

    async def _read(self) -> None:
        name = DIRECTORY.full_name(self.settings.erp_topic_prefix)
        consumer = make_consumer(self.settings, group_id=None)
        await consumer.start()
        try:
            partitions = await partitions_of(consumer, name)
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            while True:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    for record in batch:
                        self._apply_raw(record.value)
                if not self.caught_up.is_set() and all(
                    [await consumer.position(tp) >= end for tp, end in ends.items()]
                ):
                    self.caught_up.set()
        finally:
            await stop_consumer(consumer)

    def _apply_raw(self, raw: bytes | None) -> None:
        try:
            event = decode(raw, DIRECTORY)
        except ContractError:
            return
        if isinstance(event, ApproverUpdated | CompanySettingsUpdated):
            self.apply(event)
