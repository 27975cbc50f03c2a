"""The Starlette application of the Stripe sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from runtime.asgi_server import MALFORMED_REQUEST_KEY

from . import ops
from .api import Api
from .config import SandboxConfig
from .resources import (
    account_parts,
    accounts,
    application_fees,
    balance,
    charges,
    disputes,
    events,
    payment_intents,
    payment_methods,
    payouts,
    refunds,
    terminal,
    transfers,
    webhook_endpoints,
)
from .router import Router
from .state import SandboxState
from .validation import compile_operations
from .wire import StripeError, malformed_request, unrecognized

_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_RESOURCES = (
    accounts,
    account_parts,
    application_fees,
    balance,
    charges,
    disputes,
    events,
    payment_intents,
    payment_methods,
    payouts,
    refunds,
    terminal,
    transfers,
    webhook_endpoints,
)


def create_app(config: SandboxConfig | None = None) -> Starlette:
    """A fresh sandbox app; its state is `app.state.sandbox`, started and stopped by the lifespan."""
    state = SandboxState(config or SandboxConfig.from_env())
    router = Router((route for module in _RESOURCES for route in module.ROUTES), compile_operations())
    api = Api(state, router)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await state.start()
        try:
            yield
        finally:
            await state.stop()

    app = Starlette(
        # The API route first: Starlette tries routes in order and this one takes nearly all traffic.
        # Every method: Stripe answers an unknown method on a known path with its JSON 404.
        routes=[Route("/v1/{rest:path}", api.handle, methods=_ALL_METHODS), *ops.ROUTES],
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    app.state.sandbox = state
    setattr(app.state, MALFORMED_REQUEST_KEY, malformed_request)  # uvicorn's 400s as Stripe's JSON too
    app.state.operations = router.operations  # (METHOD, path pattern) served, for tests
    return app


def _stripe_json(error: StripeError) -> Response:
    return Response(orjson.dumps(error.body()), error.status, media_type="application/json")


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 / 405 (outside `/v1`) in Stripe's error shape."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status in (404, 405):
        return _stripe_json(unrecognized(request.method, request.url.path))
    return _stripe_json(StripeError(status, str(getattr(exc, "detail", "")) or "Bad request."))


async def _server_error(request: Request, exc: Exception) -> Response:
    return _stripe_json(StripeError(500, "An unknown error occurred in the sandbox.", type="api_error"))
