"""The ASGI application: routers, error handling, middleware and the OpenAPI document."""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from starlette import status
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from . import __version__
from .core.accesslog import ACCESS_LOG
from .core.config import Settings, get_settings
from .core.db import Database
from .core.deps import RequestSlots, unverified_caller
from .core.errors import AppError, FieldError, validation_error
from .core.fastlane import FastLane, FastLaneMiddleware
from .core.http import check_request, document_conventions, documented_query_parameters
from .core.logging import configure_logging, trim_records_for_serving
from .core.reads import Reads
from .core.middleware import (
    AuditMiddleware,
    ErrorMiddleware,
    IdempotencyMiddleware,
    RateLimitMiddleware,
    RequestContextMiddleware,
)
from .core.problem import PROBLEM_JSON
from .core.ratelimit import build_rate_limiter
from .core.security import TokenSigner

log = logging.getLogger("simplane.app")


def _problem(error: AppError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers,
                        media_type=PROBLEM_JSON)


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] or parts
    return ".".join(parts) or "body"


def _validation_problem(exc: RequestValidationError) -> AppError:
    errors: list[FieldError] = []
    for err in exc.errors():
        name = _field_name(tuple(err.get("loc", ())))
        kind = err.get("type", "")
        if kind == "json_invalid":
            return validation_error(f"the request body is not valid JSON: {err.get('msg')}",
                                    [FieldError("body", err.get("msg", "invalid JSON"))])
        if kind == "extra_forbidden":
            message = f"unknown field {name!r}"
        elif "input" in err and kind != "missing":
            message = f"{err.get('msg')} (got {err['input']!r})"
        else:
            message = err.get("msg", "invalid")
        errors.append(FieldError(name, message))
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors) or "invalid request"
    return validation_error(detail, errors)


def _allowed_methods(request: Request) -> str:
    # FastAPI makes one route per method and Starlette's 405 names only the first route's
    # methods, so ask every route which methods would fully match this path.
    routes = request.app.router.routes
    return ", ".join(
        method for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL
               for route in routes))


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def app_error(_: Request, exc: AppError) -> JSONResponse:
        return _problem(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        caller = unverified_caller(request)
        if caller is not None:
            try:
                await anyio.to_thread.run_sync(caller.verify_alone)
            except AppError as error:
                return _problem(error)
        return _problem(_validation_problem(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 405:
            error = AppError(f"{request.method} is not allowed on {request.url.path}", 405,
                             "method_not_allowed", "Method not allowed",
                             headers={**(exc.headers or {}), "Allow": _allowed_methods(request)})
        elif exc.status_code == 404:
            error = AppError(f"no route {request.url.path}", 404, "not_found", "Not found")
        elif exc.status_code == 400:
            error = validation_error(str(exc.detail))
        else:
            error = AppError(str(exc.detail), exc.status_code, "http_error", "HTTP error",
                             headers=dict(exc.headers or {}))
        return _problem(error)

    @app.exception_handler(OperationalError)
    async def database_down(request: Request, exc: OperationalError) -> JSONResponse:
        log.error("database unavailable", exc_info=exc)
        return _problem(AppError("the database is unavailable; retry shortly", 503,
                                 "service_unavailable", "Service unavailable",
                                 headers={"Retry-After": "5"}))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc,
                  extra={"request_id": request.scope.get("state", {}).get("request_id")})
        return _problem(AppError("an unexpected error occurred; the request id names it in logs",
                                 500, "internal_error", "Internal error"))



def _install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes,
                             description=app.description)
        # Validation failures answer 400 problem+json (documented per route), never FastAPI's
        # Unprocessable Content.
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                operation.get("responses", {}).pop(str(status.HTTP_422_UNPROCESSABLE_CONTENT), None)
        components = schema.get("components", {}).get("schemas", {})
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        document_conventions(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _gather_sqlite_statistics(database: Database) -> None:
    """SQLite plans from statistics only once ANALYZE has gathered them, and nothing gathers
    them by itself. Without them it read a Thing's tags through (account_id, tag), every tag
    of the account (10 ms for 100,000 tagged Things), instead of the key (thing_id, tag)
    (0.005 ms). Sampled (`analysis_limit`): a few milliseconds whatever the size."""
    with database.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA analysis_limit = 1000")
        connection.exec_driver_sql("ANALYZE")
        connection.commit()
    # A connection reads the statistics when it opens and keeps them: the pooled ones opened
    # before (the start's migrations) are replaced.
    database.engine.dispose()


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    ACCESS_LOG.write_to(sys.stderr)  # where configure_logging's handler writes
    database = database or Database(settings.database_url)
    signer = TokenSigner(settings.resolved_secret_key())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Every request checks its query against the OpenAPI document: build it before the
        # first request rather than during it.
        await anyio.to_thread.run_sync(documented_query_parameters, app)
        if not database.is_postgres:
            await anyio.to_thread.run_sync(_gather_sqlite_statistics, database)
        # The southbound side runs beside the API in every `serve` process.
        radius = worker = None
        if settings.radius_enabled:
            from .radius.disconnect import DisconnectWorker
            from .radius.server import RadiusServer

            radius = RadiusServer(settings, database)
            await radius.start()
            worker = DisconnectWorker(settings, database)
            worker.start()
        from .sms.smsc import SmscWorker

        smsc = SmscWorker(database)
        smsc.start()
        from .billing.closing import ClosingWorker

        closer = ClosingWorker(database, settings.billing_grace_days)
        closer.start()
        from .bulk.worker import BulkWorker

        bulk = BulkWorker(database, stale_after=timedelta(seconds=settings.bulk_stale_seconds),
                          state_batch=settings.bulk_batch_size,
                          parallel_batches=settings.bulk_parallel_batches)
        bulk.start()
        app.state.bulk_worker = bulk  # for a look at its state (tests of a shutdown mid-job)
        from .webhooks.delivery import DeliveryWorker

        deliveries = DeliveryWorker(
            database, settings.resolved_secret_key(), timeout=settings.webhook_timeout_seconds,
            base_seconds=settings.webhook_retry_base_seconds,
            max_age=timedelta(seconds=settings.webhook_retry_max_age_seconds))
        deliveries.start()
        app.state.radius = radius
        # What start-up built lives as long as the process: moved out of the collector's
        # sight, a full collection no longer walks it. Those walks (tens of milliseconds each)
        # were the p99 of a page of 100 Things: 160 ms before, 65 ms after, p50 48 ms.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            smsc.stop()
            closer.stop()
            bulk.stop()
            deliveries.stop()
            if worker is not None:
                worker.stop()
            if radius is not None:
                await radius.stop()
            await app.state.reads.close()
            ACCESS_LOG.flush()

    app = FastAPI(
        lifespan=lifespan,
        title="simplane",
        version=__version__,
        description="IoT Programmable SIM platform: Things, Things Groups, Networks and more.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        dependencies=[Depends(check_request)],
        # simplane's telemetry is its own: Prometheus metrics and a JSON log line a request
        # (`core.middleware`). FastAPI's native OpenTelemetry, left on, asks the global
        # providers whether any is configured on every request: ~12 us of a served
        # single-Thing read's ~150 us of CPU, for spans nothing collects.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.database = database
    app.state.request_slots = RequestSlots(min(settings.request_concurrency, database.pool_size))
    # As many as the engine's pool: reads on the loop overlap their round trips, and with 2
    # the loop sat idle between them (a served single read: ~0.95 -> ~0.83 ms of CPU with 10).
    app.state.reads = Reads(database, connections=database.pool_size)
    app.state.token_signer = signer

    _install_error_handlers(app)
    _install_openapi(app)
    _include_routers(app)
    from .things.routes import FAST_LANES

    app.state.fast_lane = FastLane(app, FAST_LANES)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        try:
            with database.transaction(read_only=True) as session:
                session.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001 - any failure means not ready
            return JSONResponse({"status": "unavailable"}, status_code=503,
                                headers={"Retry-After": "5"})
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest().decode(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(FastLaneMiddleware)
    app.add_middleware(ErrorMiddleware)
    app.add_middleware(AuditMiddleware, database=database)
    app.add_middleware(IdempotencyMiddleware, database=database, signer=signer,
                       ttl_seconds=settings.idempotency_ttl_seconds)
    app.add_middleware(RateLimitMiddleware, limiter=build_rate_limiter(settings.redis_url),
                       settings=settings, signer=signer)
    app.add_middleware(RequestContextMiddleware)
    return app


def _include_routers(app: FastAPI) -> None:
    from .accounts.routes import router as accounts_router
    from .billing.routes import router as billing_router
    from .bulk.routes import router as bulk_router
    from .webhooks.routes import router as webhooks_router
    from .events.routes import router as events_router
    from .firewall.routes import router as firewall_router
    from .groups.routes import router as groups_router
    from .networks.routes import router as networks_router
    from .sms.routes import network_router as network_sms_router
    from .sms.routes import router as sms_router
    from .things.routes import router as things_router
    from .users.routes import router as users_router

    for router in (users_router, accounts_router, things_router, groups_router, networks_router,
                   firewall_router, sms_router, network_sms_router, billing_router, bulk_router, webhooks_router, events_router):
        app.include_router(router, prefix="/v1")


def app_from_environment() -> FastAPI:
    """Entry point for `uvicorn --factory` (used by `simplane serve --workers N`)."""
    trim_records_for_serving()
    return create_app()
