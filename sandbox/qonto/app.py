"""A Qonto Business API v2 stand-in: the read API the platform uses, plus ``/_sandbox`` controls.

Real API: ``GET /v2/organization``, ``GET /v2/transactions``, ``GET /v2/transactions/{id}``,
authenticated with ``Authorization: {login}:{secret_key}``, rate limited per IP.

Sandbox only (same authentication, no rate limit):
``POST /_sandbox/transactions`` and ``PATCH /_sandbox/transactions/{id}`` (both send
webhooks), ``POST|GET /_sandbox/webhooks``, ``DELETE /_sandbox/webhooks/{id}``,
``GET /_sandbox/webhook_deliveries``, ``POST|DELETE /_sandbox/faults``, ``POST /_sandbox/reset``,
and ``GET /_sandbox/health`` (no authentication).
"""

from __future__ import annotations

import contextlib
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.qonto.config import QontoSandboxConfig
from sandbox.qonto.limits import InjectedFault
from sandbox.qonto.listing import parse_query
from sandbox.qonto.models import SandboxError
from sandbox.qonto.state import SandboxState

__all__ = ["create_app"]

_Handler = Callable[[Request, SandboxState], Awaitable[Response]]
_IDEMPOTENCY_HEADERS = ("x-qonto-idempotency-key", "idempotency-key")


def create_app(config: QontoSandboxConfig | None = None) -> Starlette:
    """Build the sandbox app; its state is ``app.state.sandbox`` (a :class:`SandboxState`)."""
    state = SandboxState(config or QontoSandboxConfig())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await state.aclose()

    routes = [
        Route("/v2/organization", _api(_organization), methods=["GET"]),
        Route("/v2/transactions", _api(_list_transactions), methods=["GET"]),
        Route("/v2/transactions/{ref}", _api(_get_transaction), methods=["GET"]),
        Route("/_sandbox/health", _health, methods=["GET"]),
        Route("/_sandbox/transactions", _control(_create_transaction), methods=["POST"]),
        Route("/_sandbox/transactions/{ref}", _control(_update_transaction), methods=["PATCH"]),
        Route("/_sandbox/webhooks", _control(_add_webhook), methods=["POST"]),
        Route("/_sandbox/webhooks", _control(_list_webhooks), methods=["GET"]),
        Route("/_sandbox/webhooks/{subscription_id}", _control(_remove_webhook), methods=["DELETE"]),
        Route("/_sandbox/webhook_deliveries", _control(_list_deliveries), methods=["GET"]),
        Route("/_sandbox/faults", _control(_add_faults), methods=["POST"]),
        Route("/_sandbox/faults", _control(_clear_faults), methods=["DELETE"]),
        Route("/_sandbox/reset", _control(_reset), methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            SandboxError: _sandbox_error,  # type: ignore[dict-item]
            HTTPException: _http_error,  # type: ignore[dict-item]
        },
    )
    app.state.sandbox = state
    return app


# ---- plumbing ----------------------------------------------------------------------------


async def _sandbox_error(request: Request, exc: SandboxError) -> Response:
    return JSONResponse(exc.body(), status_code=exc.status)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    # Unknown routes and wrong methods answer in Qonto's error format too.
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
    body = {"errors": [{"code": code, "detail": exc.detail}]}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def _authenticate(request: Request, config: QontoSandboxConfig) -> None:
    given = request.headers.get("authorization", "").strip()
    expected = f"{config.login}:{config.secret_key}"
    if not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
        raise SandboxError(401, "unauthorized", "Authorization header must be '{login}:{secret_key}'")


def _fault_response(fault: InjectedFault) -> Response:
    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
    code = "too_many_requests" if fault.status == 429 else "internal_server_error"
    body = {"errors": [{"code": code, "detail": "fault injected by the Qonto sandbox"}]}
    return JSONResponse(body, status_code=fault.status, headers=headers)


def _api(handler: _Handler) -> Callable[[Request], Awaitable[Response]]:
    """A real-API endpoint: injected faults first, then the rate limit, then authentication."""

    async def endpoint(request: Request) -> Response:
        state: SandboxState = request.app.state.sandbox
        fault = state.faults.take()
        if fault is not None:
            return _fault_response(fault)
        client = request.client.host if request.client else "unknown"
        wait = state.rate_limiter.check(client)
        if wait is not None:
            body = {"errors": [{"code": "too_many_requests", "detail": "rate limit exceeded"}]}
            return JSONResponse(body, status_code=429, headers={"Retry-After": str(wait)})
        _authenticate(request, state.config)
        return await handler(request, state)

    return endpoint


def _control(handler: _Handler) -> Callable[[Request], Awaitable[Response]]:
    """A sandbox-only endpoint: authenticated like the API, never faulted nor rate limited."""

    async def endpoint(request: Request) -> Response:
        state: SandboxState = request.app.state.sandbox
        _authenticate(request, state.config)
        return await handler(request, state)

    return endpoint


async def _json_object(request: Request) -> dict[str, Any]:
    body = await request.body()
    if not body.strip():
        return {}
    try:
        document = json.loads(body)
    except ValueError:
        raise SandboxError(400, "invalid_json", "the request body is not valid JSON") from None
    if not isinstance(document, dict):
        raise SandboxError(400, "invalid_json", "the request body must be a JSON object")
    return document


# ---- the Qonto API -----------------------------------------------------------------------


async def _organization(request: Request, state: SandboxState) -> Response:
    return JSONResponse(state.organization())


async def _list_transactions(request: Request, state: SandboxState) -> Response:
    values: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        values.setdefault(key, []).append(value)
    return JSONResponse(state.list_transactions(parse_query(values)))


async def _get_transaction(request: Request, state: SandboxState) -> Response:
    return JSONResponse({"transaction": state.get_transaction(request.path_params["ref"]).to_api()})


# ---- sandbox controls --------------------------------------------------------------------


async def _health(request: Request) -> Response:
    state: SandboxState = request.app.state.sandbox
    return JSONResponse(
        {"status": "ok", "transactions": len(state.transactions), "pending_deliveries": state.dispatcher.pending}
    )


async def _create_transaction(request: Request, state: SandboxState) -> Response:
    fields = await _json_object(request)
    key = next((request.headers[h] for h in _IDEMPOTENCY_HEADERS if request.headers.get(h)), None)
    fingerprint = json.dumps(fields, sort_keys=True)
    if key is not None:
        replay = state.idempotent(key, fingerprint)
        if replay is not None:
            return JSONResponse(replay, status_code=201)
    body = {"transaction": state.create_transaction(fields).to_api()}
    if key is not None:
        state.remember(key, fingerprint, body)
    return JSONResponse(body, status_code=201)


async def _update_transaction(request: Request, state: SandboxState) -> Response:
    fields = await _json_object(request)
    txn = state.update_transaction(request.path_params["ref"], fields)
    return JSONResponse({"transaction": txn.to_api()})


async def _add_webhook(request: Request, state: SandboxState) -> Response:
    fields = await _json_object(request)
    url = fields.get("url") or fields.get("callback_url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise SandboxError(422, "invalid_parameter", "url must be an http(s) URL", "url")
    secret = fields.get("secret")
    if secret is not None and (not isinstance(secret, str) or not secret):
        raise SandboxError(422, "invalid_parameter", "secret must be a non-empty string", "secret")
    subscription = state.add_subscription(url, secret)
    return JSONResponse(subscription.to_api(with_secret=True), status_code=201)


async def _list_webhooks(request: Request, state: SandboxState) -> Response:
    return JSONResponse({"webhooks": [sub.to_api() for sub in state.subscriptions.values()]})


async def _remove_webhook(request: Request, state: SandboxState) -> Response:
    state.remove_subscription(request.path_params["subscription_id"])
    return Response(status_code=204)


async def _list_deliveries(request: Request, state: SandboxState) -> Response:
    return JSONResponse(
        {
            "deliveries": [attempt.to_api() for attempt in state.dispatcher.attempts],
            "pending": state.dispatcher.pending,
        }
    )


async def _add_faults(request: Request, state: SandboxState) -> Response:
    fields = await _json_object(request)
    status, count, retry_after = fields.get("status"), fields.get("count", 1), fields.get("retry_after")
    if not isinstance(status, int) or not isinstance(count, int):
        raise SandboxError(422, "invalid_parameter", "status and count must be integers", "status")
    if retry_after is not None and not isinstance(retry_after, int):
        raise SandboxError(422, "invalid_parameter", "retry_after must be whole seconds", "retry_after")
    try:
        state.faults.add(status, count, retry_after)
    except ValueError as exc:
        raise SandboxError(422, "invalid_parameter", str(exc), "status") from None
    return JSONResponse({"queued": state.faults.remaining}, status_code=201)


async def _clear_faults(request: Request, state: SandboxState) -> Response:
    state.faults.clear()
    return Response(status_code=204)


async def _reset(request: Request, state: SandboxState) -> Response:
    state.reset()
    return JSONResponse({"status": "reset"})
