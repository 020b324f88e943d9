"""A fuzz run's records: each hostile record and the normal item that follows it on its
partition, published pair by pair, and where each record landed."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2

from consumers.dev import samples as se
from tests.support.events import for_company
from tests.support.hostile import Hostile
from tests.support.kafka import Raw, Sender, as_record
from tests.support.system import System
from tests.support.system_scripts import Item, Script, first_phase
from topics.specs import DECISIONS, DIRECTORY, NOTIFICATIONS

#: Where a record landed: (partition, offset).
At = tuple[int, int]


@dataclass
class Pair:
    """A hostile record and the normal item after it; where they landed once published."""

    hostile: Hostile
    item: Item
    #: The item's approver when it is not the company's usual one.
    approver: dict[str, str] | None = None
    #: (partition, offset) of the hostile record; None if the broker refused it.
    at: At | None = None
    #: topic name → where the item's record on that topic landed.
    followers: dict[str, At] = field(default_factory=dict)

    @property
    def key(self) -> bytes:
        """The normal item's key."""
        return item_key(self.item)

    def records(self) -> list[Raw]:
        """The normal records that follow the hostile one: the item's submission and its
        decision; after a directory record, the update of the approver who then accepts it."""
        if self.approver is None:
            return first_phase(self.item)
        update = se.approver_updated(self.approver)
        accept = se.accepted(
            self.item.kind,
            self.item.id,
            self.approver,
            submission_version=1,
            erp_job_id=f"J{self.item.n:05d}",
            job_template="COMM",
        )
        return [
            as_record(DIRECTORY, for_company(self.item.company, update)),
            first_phase(self.item)[0],
            as_record(DECISIONS, for_company(self.item.company, accept)),
        ]


def partition_of(key: bytes, partitions: int = 6) -> int:
    """The partition aiokafka's (and Java's) default partitioner gives a key (murmur2)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def item_key(item: Item) -> bytes:
    """An item's record key."""
    return f"{item.company}:{item.kind}:{item.id}".encode()


def pairs_for(batch: list[Hostile], company: str) -> list[Pair]:
    """A normal item of `company` for each hostile record, keyed to the record's partition:
    rejected after a notification (so that a rejection notice follows it), accepted
    otherwise; after a directory record, by an approver keyed to that partition."""
    spare: dict[tuple[Script, int], list[Item]] = defaultdict(list)
    numbers = iter(range(10**6))
    approvers = _approvers(company)
    pairs = []
    for hostile in batch:
        script = Script.REJECT if hostile.spec is NOTIFICATIONS else Script.ACCEPT
        while not spare[(script, hostile.partition)]:
            item = Item(company, next(numbers), script)
            spare[(script, partition_of(item_key(item)))].append(item)
        item = spare[(script, hostile.partition)].pop(0)
        approver = approvers[hostile.partition] if hostile.spec is DIRECTORY else None
        pairs.append(Pair(hostile, item, approver))
    return pairs


def _approvers(company: str) -> dict[int, dict[str, str]]:
    """An approver per partition of erp.directory, keyed to it."""
    found: dict[int, dict[str, str]] = {}
    for n in range(10**4):
        user = {"user_id": f"fz-appr-{n}", "email": f"fz-appr-{n}@system.example", "name": "Fz"}
        found.setdefault(partition_of(f"{company}:user:{user['user_id']}".encode()), user)
        if len(found) == DIRECTORY.partitions:
            return found
    raise AssertionError("no approver found for some partition")


async def publish_pairs(system: System, pairs: list[Pair]) -> None:
    """For each pair: what the hostile record needs first, the record itself (acknowledged),
    then the item's records. A hostile record the broker refuses never reaches a worker: its
    `at` stays None (the embedded broker takes everything; a real one may not)."""
    async with Sender(system.settings) as sender:
        for pair in pairs:
            hostile = pair.hostile
            for spec, key, value in hostile.before:
                await sender.send(spec, value, key=key)
            try:
                pair.at = await sender.send(
                    hostile.spec,
                    hostile.value,
                    key=hostile.key,
                    partition=hostile.partition,
                    headers=hostile.headers,
                    timestamp_ms=hostile.timestamp_ms,
                    client=hostile.client,
                )
            except (KafkaError, RuntimeError) as refused:
                print(f"the broker refused {hostile.describe()[:200]}: {refused!r}")
            for spec, key, value in pair.records():
                pair.followers[spec.name] = await sender.send(spec, value, key=key)
