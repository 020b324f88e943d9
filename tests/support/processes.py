"""Running `erp-pipeline` as a user would: one-shot commands, worker subprocesses, their env."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tests.support.paths import ROOT
from tests.support.waiting import eventually


def command(*args: str) -> list[str]:
    """The argv of `erp-pipeline ARGS` with this interpreter."""
    return [sys.executable, "-m", "consumers.cli", *args]


def with_root(env: dict[str, str]) -> dict[str, str]:
    """`env` with the repository first on PYTHONPATH (children import this checkout)."""
    paths = [str(ROOT), *(p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p)]
    return {**env, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}


def cli(
    env: dict[str, str], *args: str, input_text: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `erp-pipeline ARGS` to the end from the repository, output captured as text."""
    return subprocess.run(
        command(*args),
        env=with_root(env),
        cwd=ROOT,
        input=input_text,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def spawn(env: dict[str, str], *args: str, **popen: Any) -> subprocess.Popen[Any]:
    """Start `erp-pipeline ARGS` from the repository and return at once."""
    return subprocess.Popen(command(*args), env=with_root(env), cwd=ROOT, **popen)


def start_worker(
    name: str, env: dict[str, str], log_path: Path | None = None
) -> subprocess.Popen[bytes]:
    """`erp-pipeline run NAME`; its output appended to `log_path` (else to the test's output)."""
    if log_path is None:
        return spawn(env, "run", name, stdin=subprocess.DEVNULL)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return spawn(
            env, "run", name, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )


@contextlib.contextmanager
def worker(
    name: str, env: dict[str, str], log_path: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`erp-pipeline run NAME` for the duration of the block; stopped (`stop`) after it."""
    process = start_worker(name, env, log_path)
    try:
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen[Any], kill: bool = False) -> None:
    """Stop a worker: SIGKILL at once when `kill`, else SIGTERM with a bounded wait."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def stop_all(processes: Iterable[subprocess.Popen[Any]], timeout: float = 20) -> None:
    """SIGTERM every process, SIGKILL what still runs after `timeout` seconds."""
    processes = list(processes)
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    with contextlib.suppress(AssertionError):  # what is still running is killed below
        eventually(
            lambda: all(process.poll() is not None for process in processes),
            timeout=timeout,
            interval=0.1,
            message="every process exited on SIGTERM",
        )
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def wait_for_output(
    path: Path,
    pattern: str,
    *,
    timeout: float,
    process: subprocess.Popen[Any] | None = None,
    after: int = 0,
) -> re.Match[str]:
    """The first match of `pattern` (multi-line regex) in the text of `path` from character
    `after`, once it is there; fails at once if `process` exits before it is."""

    def found() -> re.Match[str] | None:
        text = path.read_text(errors="replace") if path.exists() else ""
        match = re.compile(pattern, re.MULTILINE).search(text, after)
        if match is None and process is not None and process.poll() is not None:
            raise AssertionError(
                f"exited ({process.returncode}) before printing {pattern!r}:\n{text[-4000:]}"
            )
        return match

    return eventually(
        found,
        timeout=timeout,
        interval=0.2,
        message=lambda: f"no {pattern!r} in {path}:\n{path.read_text(errors='replace')[-4000:]}",
    )


def hiding(module: str, directory: Path) -> str:
    """A directory that, first on PYTHONPATH, makes `import module` fail as if it were not
    installed (an install without an optional package). Returns the directory."""
    package = directory / module
    package.mkdir(parents=True, exist_ok=True)
    message = f"No module named {module!r} (hidden by the test)"
    (package / "__init__.py").write_text(f"raise ImportError({message!r})\n")
    return str(directory)


def env_for(base: dict[str, str], data_dir: Path, **extra: str) -> dict[str, str]:
    """Worker environment with its own data directory and quick timers."""
    return {
        **base,
        "DATA_DIR": str(data_dir),
        "KAFKA_SESSION_TIMEOUT_MS": "6000",
        "PROCESSOR_SUMMARY_INTERVAL_S": "1",
        "METRICS_PORT": "0",
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        **extra,
    }
