"""faust's own ceiling on this broker, measured by running `pipeline.processor.reference`."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from consumers.dev.stack import Stack


def measure(stack: Stack, count: int, timeout_s: float = 180.0) -> dict[str, Any]:
    """Run the reference worker over the baseline's `count` records; its events/s."""
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        env = {**stack.env(), "KAFKA_SESSION_TIMEOUT_MS": "6000", "DATA_DIR": tmp}
        process = subprocess.Popen(
            [sys.executable, "-m", "pipeline.processor.reference", str(count), str(result)],
            env=env,
            stdin=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + timeout_s
            while not result.exists() and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            if not result.exists():
                return {"measured": False, "note": "faust reference: no result before the deadline"}
            figures = json.loads(result.read_text())
        finally:
            process.kill()
            process.wait()
    return {"measured": True, **figures, "events_per_s": figures["events"] / figures["seconds"]}
