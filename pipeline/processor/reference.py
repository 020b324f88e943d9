"""faust's own ceiling on this broker: an agent that decodes, writes one table entry, sends two.

The benchmark (`consumers.bench.faust_reference`) runs it as
`python -m pipeline.processor.reference COUNT RESULT_FILE` against the baseline's private
topics; it writes events/s to RESULT_FILE once COUNT records went through.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import faust

from pipeline.kafka import create_topics
from pipeline.processor.config import faust_config
from pipeline.settings import Settings
from topics import TopicSpec, decode, encode
from topics.specs import STATUS, SUBMISSIONS

APP = "bench-reference"
TABLE = "refs"


def _private(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "erp_topic_prefix": f"{settings.erp_topic_prefix}base.",
            "processor_store": "memory",
        }
    )


def _internal_topics() -> list[TopicSpec]:
    return [
        replace(SUBMISSIONS, name=f"{APP}-{TABLE}-changelog", cleanup_policy="compact"),
        replace(SUBMISSIONS, name=f"{APP}-__assignor-__leader", partitions=1),
    ]


def main(count: int, result: Path) -> None:
    """The reference worker: runs until `count` records went through, then reports and idles."""
    settings = _private(Settings())
    asyncio.run(create_topics(settings, _internal_topics()))
    app = faust.App(settings.group(APP), **faust_config(settings))
    table = app.Table(
        TABLE, default=None, partitions=SUBMISSIONS.partitions, key_type=bytes, value_type=bytes
    )
    source = app.topic(settings.topic(SUBMISSIONS.name), key_type=bytes, value_type=bytes)
    out = settings.topic(STATUS.name)
    seen = 0
    started = 0.0

    @app.agent(source, concurrency=1)
    async def reference(stream: Any) -> None:
        nonlocal seen, started
        async for event in stream.events():
            started = started or time.perf_counter()
            decoded = decode(event.value, SUBMISSIONS)
            value = encode(decoded)
            table[event.key] = value
            await app.producer.send_and_wait(out, event.key, value, None, None, None)
            await app.producer.send_and_wait(out, event.key, value, None, None, None)
            seen += 1
            if seen == count:
                elapsed = time.perf_counter() - started
                partial = result.with_suffix(".part")
                partial.write_text(json.dumps({"events": count, "seconds": elapsed}))
                partial.rename(result)

    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]))
