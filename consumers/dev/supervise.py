"""Watching the workers `dev` and `demo` start: an exit is reported with the worker's last log
lines and the worker restarted, within a restart budget; past it the stack stops with the error.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from consumers.dev.stack import Stack

Say = Callable[[str], None]


class WorkerFailed(RuntimeError):
    """A worker kept exiting and its restart budget is spent.

    The message names the worker, how it exited and its last log lines.
    """


@dataclass(frozen=True)
class RestartBudget:
    """At most `restarts` restarts of one worker within `window_s` seconds, each after a wait
    that doubles from `backoff_s` up to `max_backoff_s`."""

    restarts: int = 3
    window_s: float = 120.0
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0

    def delay(self, recent: int) -> float | None:
        """Seconds to wait before restarting a worker restarted `recent` times within the
        window; None when the budget is spent."""
        if recent >= self.restarts:
            return None
        return float(min(self.max_backoff_s, self.backoff_s * 2**recent))


def describe_exit(code: int) -> str:
    """`exit code 1`, or `killed by SIGKILL` for a process a signal ended."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class Supervisor:
    """Looks after the workers of `stack` each time `poll()` is called.

    `say` receives what the supervisor reports (a worker's exit with its last log lines, its
    restart); `echo`, when given, each new line of the workers' logs, prefixed by the worker's
    name. `clock` is monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        stack: Stack,
        say: Say,
        *,
        budget: RestartBudget | None = None,
        echo: Say | None = None,
        clock: Callable[[], float] = time.monotonic,
        log_lines: int = 20,
    ) -> None:
        self.stack, self.say, self.echo, self.clock = stack, say, echo, clock
        self.budget = budget or RestartBudget()
        self.log_lines = log_lines
        #: When each worker was restarted (within the budget's window).
        self._restarts: dict[str, list[float]] = {}
        #: Workers that exited and when they are to be started again.
        self._due: dict[str, float] = {}
        #: How far each worker's log has been echoed (bytes), and a partial last line.
        self._echoed: dict[str, int] = {}
        self._partial: dict[str, str] = {}

    def poll(self) -> None:
        """Echo new log lines, report and schedule a restart for each worker that exited,
        restart those whose wait is over.

        Raises WorkerFailed when a worker exits with its restart budget spent.
        """
        self._echo_logs()
        now = self.clock()
        for label, process in list(self.stack.workers.items()):
            if label in self._due:
                if now >= self._due[label]:
                    del self._due[label]
                    self._restart(label, now)
                continue
            code = process.poll()
            if code is not None:
                self._exited(label, process.pid, code, now)

    def _exited(self, label: str, pid: int, code: int, now: float) -> None:
        lines = self.stack.last_log_lines(label, self.log_lines)
        shown = "".join(f"\n    | {line}" for line in lines) or "\n    (no log output)"
        where = self.stack.log_path(label)
        recent = [t for t in self._restarts.get(label, []) if now - t < self.budget.window_s]
        self._restarts[label] = recent
        delay = self.budget.delay(len(recent))
        exited = f"worker {label} (pid {pid}) exited: {describe_exit(code)}"
        if delay is None:
            raise WorkerFailed(
                f"{exited}; restarted {len(recent)} times within {self.budget.window_s:.0f}s, "
                f"giving up. Last log lines{f' ({where})' if where else ''}:{shown}"
            )
        self.say(f"{exited}; restarting it in {delay:.0f}s. Last log lines:{shown}")
        self._due[label] = now + delay

    def _restart(self, label: str, now: float) -> None:
        process = self.stack.restart_worker(label)
        self._restarts.setdefault(label, []).append(now)
        self.say(f"worker {label} restarted: pid {process.pid}")

    def _echo_logs(self) -> None:
        if self.echo is None:
            return
        for label in list(self.stack.workers):
            path = self.stack.log_path(label)
            if path is None or not path.exists():
                continue
            position = self._echoed.setdefault(label, self.stack.log_starts.get(label, 0))
            with path.open("rb") as log_file:
                log_file.seek(position)
                chunk = log_file.read()
            if not chunk:
                continue
            self._echoed[label] = position + len(chunk)
            text = self._partial.pop(label, "") + chunk.decode("utf-8", errors="replace")
            *complete, rest = text.split("\n")
            if rest:
                self._partial[label] = rest
            for line in complete:
                self.echo(f"{label:<10} | {line}")

    def wait_ready(self, timeout_s: float, stop: threading.Event | None = None) -> dict[str, str]:
        """Poll until every worker answers `/readyz` with 200, the time is up or `stop` is set.

        Returns worker → why it is not ready yet ({} when all are). Raises WorkerFailed as
        `poll` does: a worker that cannot start stops the wait.
        """
        deadline = self.clock() + timeout_s
        waiting: dict[str, str] = dict.fromkeys(self.stack.workers, "not answering yet")
        while waiting and not (stop is not None and stop.is_set()):
            self.poll()
            for label in list(waiting):
                if label in self._due:
                    waiting[label] = "restarting"
                    continue
                problem = readiness(self.stack.metrics_ports[label])
                if problem is None:
                    del waiting[label]
                else:
                    waiting[label] = problem
            if not waiting or self.clock() > deadline:
                break
            if stop is not None:
                stop.wait(0.5)
            else:
                time.sleep(0.5)
        return waiting

    async def watch(self, interval_s: float = 0.5) -> None:
        """`poll` every `interval_s` seconds, forever (raises WorkerFailed as `poll` does)."""
        while True:
            await asyncio.to_thread(self.poll)
            await asyncio.sleep(interval_s)


def readiness(port: int, timeout_s: float = 1.0) -> str | None:
    """None when the worker on `port` answers `/readyz` with 200, else why not."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        connection.request("GET", "/readyz")
        response = connection.getresponse()
        body = response.read()
    except OSError:
        return "not answering yet"
    finally:
        connection.close()
    if response.status == 200:
        return None
    reason = f"HTTP {response.status}"
    with contextlib.suppress(ValueError, AttributeError):
        reason = str(json.loads(body).get("reason") or reason)
    return reason


__all__ = ["RestartBudget", "Supervisor", "WorkerFailed", "describe_exit", "readiness"]
