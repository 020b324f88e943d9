"""One system for the package: its own topics, two of every worker, a sink, a proxied database."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumers.dev.mailsink import MailSink
from consumers.dev.stack import Stack
from tests.support.kafka import isolated
from tests.support.paths import ROOT
from tests.support.system import LABELS, POISON_ITEM, LoopThread, System
from tests.support.tcp_proxy import TcpProxy


@pytest.fixture(scope="package")
def system(stack: Stack) -> Iterator[System]:
    """Every worker twice (same groups, so they rebalance), against topics of their own."""
    settings = asyncio.run(isolated(stack.settings, "sys"))
    loop = LoopThread()
    proxy = TcpProxy(settings.require_database_url())
    loop.call(proxy.start())
    sink = MailSink().start()
    running = System(
        settings,
        stack.env(),
        _fresh(ROOT / ".data" / "system" / stack.settings.erp_topic_prefix.strip(".")),
        sink,
        proxy,
        loop,
        overrides={"PROCESSOR_POISON_ITEM_ID": POISON_ITEM},
    )
    try:
        for label in LABELS:
            running.start(label)
        yield running
    finally:
        running.stop_all()
        sink.stop()
        with contextlib.suppress(Exception):
            loop.call(proxy.cut())
        loop.stop()


def _fresh(path: Path) -> Path:
    """An empty directory for worker data and logs (kept after the run for post-mortems)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path
