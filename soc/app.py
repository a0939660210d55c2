"""``create_app``: the FastAPI application of ``soc api`` (JSON API under ``/api/v1``).

At start-up it connects to Elasticsearch, waits for it to be healthy, installs soc's index
templates (idempotent) and loads the users directory, refusing demo users or placeholder secrets
outside development. Request counts and latencies per route go to ``/api/v1/metrics``
(Prometheus text format; route templates only, never ids or localities). The app is stateless:
run as many as needed. This module wires routers; it must not hold business rules.
"""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from elasticsearch import Elasticsearch
from fastapi import APIRouter, FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dashboards import views as dashboards
from detectors.sigma import views as rules_views
from soc import apidocs, problems
from soc.alerts import views as alert_views
from soc.auth import service as auth
from soc.auth import views as auth_views
from soc.config import Settings, get_settings
from soc.deps import IF_MATCH, EsDep
from soc.es.client import make_client, wait_until_healthy
from soc.es.indices import Indices
from soc.es.templates import Layout, setup
from soc.incidents import alert_views as incident_alert_views
from soc.incidents import silence_views
from soc.incidents import views as incident_views
from soc.notify import views as notify_views
from soc.status import views as status_views

API_PREFIX = "/api/v1"


class Health(BaseModel):
    status: str
    elasticsearch: str


def create_app(settings: Settings | None = None, es: Elasticsearch | None = None) -> FastAPI:
    """The application; ``es`` lets tests and benchmarks share one client."""
    settings = settings or get_settings()
    directory = auth.load_directory(settings)  # fails fast on a bad users file or demo in prod
    auth.configure_cache(settings)
    owns_client = es is None
    client = es if es is not None else make_client(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        wait_until_healthy(client, timeout=settings.es_wait_timeout, settings=settings)
        setup(client, app.state.indices, layout=Layout.of(settings))
        _tune_worker(settings)
        yield
        if owns_client:
            client.close()

    app = FastAPI(
        title="soc API",
        version="1",
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # served by soc.apidocs from local files (no CDN, strict CSP)
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.es = client
    app.state.indices = Indices(settings.index_prefix)
    app.state.directory = directory
    problems.install(app)
    _metrics(app)
    api = APIRouter(prefix=API_PREFIX)
    api.include_router(auth_views.router)
    api.include_router(alert_views.router)
    api.include_router(incident_alert_views.router)
    api.include_router(incident_views.router)
    api.include_router(silence_views.router)
    api.include_router(notify_views.router)
    api.include_router(status_views.router)
    api.include_router(rules_views.router)
    # TODO(issue #7 → detection): rule upload with validation, test, backtest and exceptions as
    # routes, over the same detectors.sigma.service functions `soc rules` uses today.
    api.include_router(_ops)
    app.include_router(api)
    apidocs.install(app, API_PREFIX)
    dashboards.install(app)  # the console's pages under / and its /static files
    _declare_if_match(app)
    return app


def _tune_worker(settings: Settings) -> None:
    """Per worker, once started: the size of the thread pool that runs the synchronous routes
    (anyio's default limiter of this event loop) and, with ``SOC_API_GC_FREEZE``, the start-up's
    objects moved out of the garbage collector's reach (``bench/reports/api-tail.md``)."""
    anyio.to_thread.current_default_thread_limiter().total_tokens = settings.api_threads
    if settings.api_gc_freeze:
        gc.collect()
        gc.freeze()


def _declare_if_match(app: FastAPI) -> None:
    """Publish ``If-Match`` as required where the API requires it.

    ``soc.deps.IfMatch`` reads it as optional so that a write without it gets the precise
    ``428 Precondition Required`` (RFC 6585) rather than a generic 422; the schema must still
    tell clients that those writes need it.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for parameter in operation.get("parameters", []):
                    if parameter["in"] == "header" and parameter["name"].lower() == IF_MATCH:
                        parameter["required"] = True
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


_ops = APIRouter(tags=["operations"])


@_ops.get("/health", response_model=Health)
def health(es: EsDep) -> Health:
    """Liveness and the store's health; no credentials needed, no data revealed."""
    try:
        status = str(es.cluster.health(timeout="2s")["status"])
    except Exception:  # any failure to answer means "unavailable" here
        status = "unavailable"
    return Health(
        status="ok" if status in ("green", "yellow") else "degraded", elasticsearch=status
    )


def _metrics(app: FastAPI) -> None:
    registry = CollectorRegistry()
    requests = Counter(
        "soc_api_requests", "API requests", ["method", "route", "status"], registry=registry
    )
    latency = Histogram(
        "soc_api_request_seconds", "API latency", ["method", "route"], registry=registry
    )
    app.add_middleware(_Observe, requests=requests, latency=latency)

    @app.get(
        f"{API_PREFIX}/metrics",
        tags=["operations"],
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
    )
    def metrics() -> Response:
        """Prometheus metrics of this process."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class _Observe:
    """Per response: count and time it by route template, and mark it ``no-store``.

    No cache (browser, proxy) keeps an API answer: they hold incidents, emails and tokens. A plain
    ASGI middleware: ``@app.middleware("http")`` would add a task group and two memory streams to
    every request, a measurable share of the list's time under load (``bench/api_incidents.py``).
    """

    def __init__(self, app: ASGIApp, requests: Counter, latency: Histogram) -> None:
        self.app = app
        self.requests = requests
        self.latency = latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        api = str(scope["path"]).startswith(f"{API_PREFIX}/")

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = MutableHeaders(scope=message)
                if api or "json" in headers.get("content-type", ""):
                    headers["Cache-Control"] = "no-store"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = _route_of(scope)
            self.latency.labels(scope["method"], route).observe(time.perf_counter() - started)
            self.requests.labels(scope["method"], route, str(status)).inc()


def _route_of(scope: Scope) -> str:
    """The route template (``/api/v1/incidents/{incident_id}``): ids never become labels."""
    route = scope.get("route")
    return str(getattr(route, "path", "unmatched"))
