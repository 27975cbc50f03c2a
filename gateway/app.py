"""The Starlette application: routes, errors, middleware, and gRPC stubs made in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import grpc
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.metrics import NoOpMeterProvider
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from gateway import apidocs
from gateway import clients as clients_module
from gateway.access import AccessMiddleware
from gateway.console import routes as console
from gateway.console.sessions import ConsoleBridge, ConsoleSessions
from gateway.errors import ApiError, from_domain, from_rpc_error, malformed_request, problem_response
from gateway.middleware import RequestContextMiddleware, TraceContextMiddleware
from gateway.revocations import follow_revocations
from gateway.routes import (
    accounts,
    app_config,
    banking,
    health,
    payments,
    terminal,
    webhooks,
)
from gateway.routing import IndexedRouter
from gateway.settings import GatewaySettings
from gateway.transcoding.schema import openapi_document
from gateway.webhooks.recent import RecentEvents
from runtime import tracing
from runtime.asgi_server import MALFORMED_REQUEST_KEY
from runtime.auth import TokenSigner
from runtime.clients import ServiceTokens
from runtime.errors import DomainError
from runtime.metrics import serve_metrics

log = logging.getLogger("gateway")

# Webhooks first: the busiest paths are matched before the ~50 API routes.
ROUTE_MODULES = (
    webhooks,
    health,
    accounts,
    terminal,
    payments,
    banking,
    app_config,
    console,
    apidocs,
)


def _request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


async def _api_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ApiError)
    return problem_response(error, _request_id(request))


async def _rpc_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, grpc.aio.AioRpcError)
    api_error = from_rpc_error(error)
    if api_error.status >= 500:
        log.warning("service call failed", extra={"grpc_status": error.code().name, "code": api_error.code})
    return problem_response(api_error, _request_id(request))


async def _domain_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, DomainError)
    return problem_response(from_domain(error), _request_id(request))


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
    headers = dict(error.headers or {})
    if error.status_code == 405:
        # Each method of a path is its own route: Starlette's Allow names only the first one matched.
        headers["Allow"] = ", ".join(sorted(_allowed_methods(request)))
    api_error = ApiError(error.status_code, code, str(error.detail), headers=headers)
    return problem_response(api_error, _request_id(request))


def _allowed_methods(request: Request) -> set[str]:
    allowed: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.matches(request.scope)[0] is Match.PARTIAL:
            allowed |= route.methods or set()
    return allowed


async def _unexpected(request: Request, error: Exception) -> Response:
    log.exception("unhandled error")
    return problem_response(ApiError(500, "internal_error", "internal error"), _request_id(request))


def create_app(settings: GatewaySettings) -> Starlette:
    signer = TokenSigner(settings.auth_token_secret)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tokens = ServiceTokens(signer, "gateway")
        app.state.clients = clients_module.connect(settings, tokens)
        revocations = follow_revocations(app.state.clients.accounts, signer, tokens)
        stop_metrics = await serve_metrics("gateway", settings.metrics_port, settings.host)
        try:
            yield
        finally:
            if stop_metrics is not None:
                await stop_metrics()
            revocations.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await revocations
            await app.state.clients.close()

    app = Starlette(
        routes=[route for module in ROUTE_MODULES for route in module.routes],
        middleware=[
            # Spans only: its own request metrics would repeat http.server.request.duration (by raw
            # target), and five measurements per request through the SDK cost more than the route's work.
            Middleware(
                OpenTelemetryMiddleware,  # type: ignore[arg-type]
                exclude_spans=["receive", "send"],
                meter_provider=NoOpMeterProvider(),
            )
            if tracing.recording()
            else Middleware(TraceContextMiddleware),  # type: ignore[arg-type]
            Middleware(AccessMiddleware),  # type: ignore[arg-type]
            Middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes),  # type: ignore[arg-type]
            Middleware(ConsoleBridge),  # type: ignore[arg-type]
        ],
        exception_handlers={
            ApiError: _api_error,
            grpc.aio.AioRpcError: _rpc_error,
            DomainError: _domain_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
        lifespan=lifespan,
    )
    app.router = IndexedRouter(app.router.routes, lifespan=lifespan)
    app.state.settings = settings
    setattr(app.state, MALFORMED_REQUEST_KEY, malformed_request)  # uvicorn's 400s as problem+json too
    app.state.openapi = openapi_document(ROUTE_MODULES)
    app.state.signer = signer
    app.state.recent_webhook_events = RecentEvents()
    app.state.console_sessions = ConsoleSessions(settings.console_idle_seconds)
    return app
