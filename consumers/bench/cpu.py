"""CPU time the run's processes spend over a phase, their state and children (Linux `/proc`)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat from the state (field 3) on; None if it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces: the fields after it start past its ')'
    return stat[stat.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a live process so far; None if it cannot be read."""
    fields = _stat(pid)
    if fields is None:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14, 15)


def process_state(pid: int) -> str | None:
    """A process's state letter (R, S, T for stopped, Z…); None if it cannot be read."""
    fields = _stat(pid)
    return None if fields is None else fields[0]


def children(pid: int) -> dict[int, str]:
    """The processes whose parent is `pid`: their pid and command name (read from /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the fields after the command name (which may hold spaces) start with state, ppid
        name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :]
        if int(rest.split()[1]) == pid:
            found[int(entry.name)] = name
    return found


def embedded_broker_pid() -> int | None:
    """The embedded broker started by this process (a child named tansu…), if any."""
    return next(
        (pid for pid, name in children(os.getpid()).items() if name.startswith("tansu")), None
    )


class CpuMeter:
    """CPU seconds of named processes between `start()` and `stop()`, as shares of one core."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._before: dict[str, float | None] = {}
        self._started = 0.0

    def start(self) -> None:
        self._started = time.monotonic()
        self._before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def stop(self) -> dict[str, Any]:
        """`{"seconds": wall, "processes": {name: {"cpu_s", "core_share"}}}`; a process
        whose CPU time could not be read at both ends is left out."""
        wall = max(time.monotonic() - self._started, 1e-9)
        processes = {}
        for name, pid in self.pids.items():
            before, after = self._before.get(name), cpu_seconds(pid)
            if before is None or after is None:
                continue
            processes[name] = {"cpu_s": after - before, "core_share": (after - before) / wall}
        return {"seconds": wall, "processes": processes}
