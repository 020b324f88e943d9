"""The processor built by `build_app` with a fake for every port: no broker, no faust worker."""

from __future__ import annotations

import json
from types import EllipsisType
from typing import Any

from pipeline.processor.app import build_app
from pipeline.settings import Settings
from tests.support.rules import directory
from topics import TopicSpec
from topics.record import Record


class Journal(dict[bytes, bytes]):
    """The items table: a dict that also notes each write and delete in a shared call log."""

    def __init__(self, calls: list[tuple[str, Any]]) -> None:
        super().__init__()
        self.calls = calls

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.calls.append(("put", key))
        super().__setitem__(key, value)

    def __delitem__(self, key: bytes) -> None:
        self.calls.append(("delete", key))
        super().__delitem__(key)


class Synced:
    """A replica that is always caught up (and never reads anything)."""

    def __init__(self, spec: TopicSpec, apply: Any) -> None:
        self.spec = spec

    async def start(self) -> None:
        return None

    async def sync(self, timeout_s: float = 0) -> bool:
        return True

    async def stop(self) -> None:
        return None


class Probe:
    """Stands in for the broker: where partitions start and where records really are."""

    def __init__(
        self, start: int = 0, records: set[int] | None = None, end: int | None = None
    ) -> None:
        self.start = start
        self.records = records
        self.end = end

    async def log_start(self, topic: str, partition: int) -> int:
        return self.start

    async def log_end(self, topic: str, partition: int) -> int:
        if self.end is not None:
            return self.end
        return max(self.records, default=self.start - 1) + 1 if self.records else self.start

    async def first_offset(self, topic: str, partition: int, offset: int) -> int | None:
        if self.records is None:
            return offset
        return min((o for o in self.records if o >= offset), default=None)

    async def stop(self) -> None:
        return None


class Harness:
    """A processor whose table is a dict and whose publish appends to a list.

    `calls` logs, in order, every table write and delete, durable flush, publish and
    re-route; the first `publish_failures` publishes raise ConnectionError, as a broker gone
    away would. `rerouted` holds each record re-published to the repartition topic, with the
    partition it went to.
    """

    def __init__(self, probe: Probe | None = None, publish_failures: int = 0) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.items = Journal(self.calls)
        self.published: list[Any] = []
        #: The table's keys when each publish was attempted.
        self.keys_at_publish: list[set[bytes]] = []
        self.durable_writes = 0
        self.seeks: list[tuple[tuple[str, int], int]] = []
        self.rerouted: list[tuple[Record, int]] = []
        self.offset = 0
        self._failures = publish_failures
        self.processor = build_app(
            Settings(kafka_bootstrap_servers="127.0.0.1:1", processor_store="memory"),
            table=self.items,
            directory=directory(),
            replica=Synced,
            probe=probe or Probe(),
            publish=self._publish,
            durable=self._durable,
            seek=self._seek,
            reroute=self._reroute,
        )

    async def _publish(self, event: Any) -> None:
        self.calls.append(("publish", event.event_type))
        self.keys_at_publish.append(set(self.items))
        if self._failures:
            self._failures -= 1
            raise ConnectionError("broker gone")
        self.published.append(event)

    async def _durable(self) -> None:
        self.calls.append(("durable", None))
        self.durable_writes = len(self.items)

    async def _reroute(self, record: Record, partition: int) -> None:
        self.calls.append(("reroute", partition))
        self.rerouted.append((record, partition))

    async def _seek(self, tp: tuple[str, int], offset: int) -> None:
        self.seeks.append((tp, offset))

    async def send(
        self, topic: str, value: bytes | dict[str, Any], key: bytes | EllipsisType | None = ...
    ) -> list[Any]:
        """Hand the next record of `topic` (partition 0) straight to the step; what it published.

        The record's key is `key`, by default the contract's key of the event `value` holds
        (`company:type:id`; `b"k"` for bytes or a value without an item).
        """
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        if key is ...:
            key = _contract_key(value)
        self.offset += 1
        before = len(self.published)
        await self.processor.step.handle(Record(topic, 0, self.offset, key, raw))
        return self.published[before:]


def _contract_key(value: bytes | dict[str, Any]) -> bytes:
    """`company:type:id` of an event given as a dict, else `b"k"` (no key can be made)."""
    item = value.get("item") if isinstance(value, dict) else None
    if isinstance(item, dict) and isinstance(value, dict):
        return f"{value.get('company_id')}:{item.get('type')}:{item.get('id')}".encode()
    return b"k"
