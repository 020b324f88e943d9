"""The console's composition root: `build_app(settings, console_settings)` → an ASGI app."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from consumers.console import api, pages
from consumers.console.auth import Forbidden, NotSignedIn
from consumers.console.context import Console
from consumers.console.decisions import Decider
from consumers.console.directory import DirectoryReplica
from consumers.console.erp import ErpUnavailable
from consumers.console.metrics import ConsoleMetrics
from consumers.console.settings import ConsoleSettings
from consumers.readmodel.queries import ReadModelUnavailable
from pipeline.kafka import make_producer, publish
from pipeline.settings import Settings
from topics.events import ItemEvent
from topics.specs import DECISIONS

log = logging.getLogger(__name__)


def build_app(
    settings: Settings,
    console_settings: ConsoleSettings | None = None,
    *,
    registry: CollectorRegistry | None = None,
) -> FastAPI:
    """The console app: pages at `/`, the JSON API at `/api/v1` (OpenAPI at
    `/api/v1/openapi.json`), `/metrics`, `/healthz`, `/readyz`.

    Its lifespan starts a producer (decisions go to erp.decisions) and the directory reader.
    """
    console_settings = console_settings or ConsoleSettings()
    registry = registry if registry is not None else CollectorRegistry()
    metrics = ConsoleMetrics(registry)
    replica = DirectoryReplica(settings)
    producer: list[AIOKafkaProducer] = []

    async def send(event: ItemEvent) -> None:
        await publish(producer[0], settings, DECISIONS, event)

    console = Console(
        console_settings,
        settings,
        replica,
        metrics,
        Decider(
            settings.require_database_url(),
            settings.require_erp_database_url(),
            replica.directory,
            send,
            metrics,
        ),
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        producer.append(make_producer(settings))
        await producer[0].start()
        await replica.start()
        try:
            yield
        finally:
            await replica.stop()
            await producer[0].stop()

    app = FastAPI(
        title="ERP Integrations console",
        version="1",
        lifespan=lifespan,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    app.state.console = console
    app.include_router(api.router)
    app.include_router(pages.router)
    _errors(app)
    _observability(app, console, registry)
    return app


def _errors(app: FastAPI) -> None:
    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        return pages.not_signed_in(request, str(exc))

    @app.exception_handler(Forbidden)
    async def forbidden(_: Request, exc: Forbidden) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=403)

    @app.exception_handler(ReadModelUnavailable)
    @app.exception_handler(ErpUnavailable)
    @app.exception_handler(KafkaError)
    async def unavailable(_: Request, exc: Exception) -> Response:
        log.warning("service unavailable: %r", exc)
        return JSONResponse({"detail": "a service the console needs is unavailable"}, 503)


#: HTTP methods counted under their own name; any other is counted as "other" (a label value
#: per method a client makes up would be unbounded).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _has_nul(request: Request) -> bool:
    """Whether the decoded path or a query parameter holds a NUL character."""
    return "\x00" in request.url.path or any(
        "\x00" in key or "\x00" in value for key, value in request.query_params.multi_items()
    )


def _observability(app: FastAPI, console: Console, registry: CollectorRegistry) -> None:
    @app.middleware("http")
    async def count(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if _has_nul(request):
            # PostgreSQL text cannot hold NUL: a data error of the request, never an outage
            response: Response = JSONResponse(
                {"detail": "the path or the query holds a NUL character"}, 400
            )
        else:
            response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        method = request.method if request.method in METHODS else "other"
        console.metrics.requests.labels(method, template, str(response.status_code)).inc()
        return response

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> PlainTextResponse:
        if not console.replica.caught_up.is_set():
            return PlainTextResponse("reading erp.directory", status_code=503)
        return PlainTextResponse("ready")
