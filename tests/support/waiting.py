"""Waiting for something to become true: one polling helper with a deadline, for every wait."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: A failure message, or a function that builds one (called only when the deadline passes).
Message = str | Callable[[], str]


def eventually(
    check: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.2,
    message: Message,
) -> T:
    """Call `check` every `interval` seconds until it returns something truthy, and return that.

    Raises AssertionError with `message` once `timeout` seconds pass without success. An
    exception raised by `check` propagates at once: a check fails early by raising.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        _give_up_after(deadline, timeout, message)
        time.sleep(interval)


def _give_up_after(deadline: float, timeout: float, message: Message) -> None:
    if time.monotonic() > deadline:
        why = message() if callable(message) else message
        raise AssertionError(f"not reached in {timeout:g}s: {why}")


async def eventually_async(
    check: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.2,
    message: Message,
) -> T:
    """`eventually` for async tests, run in a worker thread.

    The test's event loop, and whatever serves in it (an in-process worker, a TCP proxy), keeps
    running while the check polls. `check` is a plain function run in that thread: it reads
    topics with `asyncio.run(...)`, never with objects bound to the test's loop.
    """
    return await asyncio.to_thread(
        eventually, check, timeout=timeout, interval=interval, message=message
    )


async def eventually_here(
    check: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.001,
    message: Message,
) -> T:
    """`eventually` on the test's own event loop, for checks of objects that live on it (fakes
    driven by the code under test): each wait yields to the loop so that code keeps running."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        _give_up_after(deadline, timeout, message)
        await asyncio.sleep(interval)
