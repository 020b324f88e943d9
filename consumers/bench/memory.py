"""Resident memory of a worker process, from /proc/<pid>/status."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Rss:
    """Current (VmRSS) and peak (VmHWM) resident set size, in bytes."""

    rss: int
    peak: int


def read_rss(pid: int) -> Rss:
    """VmRSS and VmHWM of a live process (Linux)."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) * 1024
    return Rss(fields["VmRSS"], fields["VmHWM"])


@dataclass(frozen=True)
class PendingMemory:
    """The processor before and after taking `pending` items into ready_to_export."""

    pending: int
    reached: int
    before: Rss
    after: Rss

    @property
    def bytes_per_item(self) -> float:
        """Growth of the resident set per pending item."""
        return (self.after.rss - self.before.rss) / max(self.reached, 1)
