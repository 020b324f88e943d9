"""Every worker's HTTP side: /metrics in Prometheus format, /healthz, /readyz."""

from __future__ import annotations

import aiohttp

from consumers.dev.services import free_port
from pipeline.metrics import Metrics
from pipeline.observability import HealthServer


async def test_metrics_health_and_readiness() -> None:
    metrics = Metrics()
    state: dict[str, str | None] = {"problem": "partitions not assigned"}

    async def ready() -> str | None:
        return state["problem"]

    server = HealthServer(metrics, free_port(), ready, host="127.0.0.1")
    await server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        metrics.events_refused.labels("schema").inc()
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/healthz") as response:
                assert response.status == 200
            async with session.get(f"{base}/readyz") as response:
                assert response.status == 503
                assert (await response.json())["reason"] == "partitions not assigned"
            state["problem"] = None
            async with session.get(f"{base}/readyz") as response:
                assert response.status == 200
            async with session.get(f"{base}/metrics") as response:
                text = await response.text()
        assert 'erp_pipeline_events_refused_total{stage="schema"} 1.0' in text
        assert "process_resident_memory_bytes" in text
    finally:
        await server.stop()
