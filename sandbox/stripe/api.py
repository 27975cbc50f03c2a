"""The `/v1` endpoint: auth, fault injection, Stripe-Account scoping, idempotency, logging, expansion."""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from .context import Ctx, public
from .ids import new_id
from .router import Router
from .state import IdempotentResult, RequestInfo, SandboxState
from .store import StripeObject
from .wire import StripeError, api_key_from, parse_form, unrecognized

logger = logging.getLogger("sandbox.stripe.requests")

_NO_STORE_STATUSES = {401, 429, 500, 502, 503}


def _injected(status: int) -> StripeError:
    if status == 429:
        return StripeError(
            429,
            "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
            code="rate_limit",
        )
    return StripeError(status, "An unexpected error occurred (injected by the sandbox).", type="api_error")


def _expand(state: SandboxState, obj: Any, path: list[str]) -> Any:
    if not path or not isinstance(obj, dict):
        return obj
    head, rest = path[0], path[1:]
    if head == "data" and obj.get("object") == "list":
        return {**obj, "data": [_expand(state, item, rest) for item in obj["data"]]}
    value = obj.get(head)
    if isinstance(value, str):
        target = state.store.find(value)
        if target is None:
            return obj
        value = public(target)
    if value is None:
        return obj
    return {**obj, head: _expand(state, value, rest)}


def expand_all(state: SandboxState, obj: StripeObject, expand: Any) -> StripeObject:
    if isinstance(expand, str):
        expand = [expand]
    elif isinstance(expand, dict):
        expand = list(expand.values())
    for path in expand or ():
        obj = _expand(state, obj, str(path).split("."))
    return obj


class Api:
    """ASGI-facing callable for every `/v1/...` request."""

    def __init__(self, state: SandboxState, router: Router) -> None:
        self.state = state
        self.router = router

    async def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        state = self.state
        method = request.method
        path = request.url.path
        headers = request.headers
        request_id = new_id("req", 14)
        account: str | None = None
        replayed = False
        idem_key: str | None = None
        try:
            api_key = api_key_from(headers.get("authorization"))
            account = headers.get("stripe-account") or state.platform_id
            fault_after: StripeError | None = None
            if state.faults.fail_next > 0:
                state.faults.fail_next -= 1
                if not state.faults.after:
                    raise _injected(state.faults.status)
                fault_after = _injected(state.faults.status)
            limit = state.config.rate_limit_per_second
            if limit and state.rate_limited(account, limit):
                raise _injected(429)
            if state.account(account) is None:
                raise StripeError(
                    403,
                    f"The provided key does not have access to account '{account}' (or that account does not "
                    "exist). Application access may have been revoked.",
                    code="account_invalid",
                    type="invalid_request_error",
                )
            matched = self.router.match(method, path)
            if matched is None:
                raise unrecognized(method, path)
            handler, args, validate = matched
            if method == "POST":
                body = await request.body()
                params = parse_form(body.decode("utf-8", "replace"))
                idem_key = headers.get("idempotency-key")
            else:
                body = b""
                params = parse_form(request.url.query)
            # Stripe's description decides what is a valid request, before any handler or
            # idempotency key is involved (Stripe saves no result for a request it refused).
            validate(params)
            ctx = Ctx(state, account, params, str(request.base_url).rstrip("/"), path)
            version = headers.get("stripe-version")
            if idem_key:
                key = (api_key, account, idem_key)
                fingerprint = method.encode() + b" " + path.encode() + b"?" + body
                result = state.idempotent_result(key)
                if result is None and key in state.inflight:
                    result = await state.inflight[key]
                if result is not None:
                    if result.fingerprint != fingerprint:
                        raise StripeError(
                            400,
                            "Keys for idempotent requests can only be used with the same parameters they were first "
                            f"used with. Try using a key other than '{idem_key}' if you meant to execute a different "
                            "request.",
                            type="idempotency_error",
                            code="idempotency_key_in_use",
                        )
                    status, payload = result.status, result.body
                    replayed = True
                else:
                    future = state.inflight[key] = state.inflight_future()
                    try:
                        status, payload = self._execute(ctx, handler, args, request_id, idem_key, version)
                        result = IdempotentResult.of(fingerprint, status, payload, time.time(), state.answers, path)
                        if status not in _NO_STORE_STATUSES:
                            state.remember(key, result)
                        future.set_result(result)
                    except BaseException:
                        future.cancel()
                        raise
                    finally:
                        del state.inflight[key]
            else:
                status, payload = self._execute(ctx, handler, args, request_id, idem_key, version)
            if fault_after is not None:
                raise fault_after
        except StripeError as exc:
            status, payload = exc.status, orjson.dumps(exc.body())
        if method != "GET":
            state.dirty = True
        response_headers = {"request-id": request_id}
        if idem_key:
            response_headers["idempotency-key"] = idem_key
        if replayed:
            response_headers["idempotent-replayed"] = "true"
        if account and account != state.platform_id:
            response_headers["stripe-account"] = account
        duration_ms = (time.perf_counter() - started) * 1000
        state.requests.append(
            {
                "id": request_id,
                "method": method,
                "path": path,
                "account": account,
                "status": status,
                "duration_ms": round(duration_ms, 3),
                "idempotent_replayed": replayed,
                "created": time.time(),
            }
        )
        if logger.isEnabledFor(logging.INFO):
            logger.info("%s %s account=%s -> %d %.2fms", method, path, account, status, duration_ms)
        state.compact_soon()
        return Response(payload, status, response_headers, media_type="application/json")

    def _execute(
        self,
        ctx: Ctx,
        handler: Any,
        args: list[str],
        request_id: str,
        idem_key: str | None,
        version: str | None,
    ) -> tuple[int, bytes]:
        state = self.state
        state.current_request = RequestInfo(request_id, idem_key, version)
        try:
            result = handler(ctx, *args)
        except StripeError as exc:
            return exc.status, orjson.dumps(exc.body())
        except Exception:
            logger.exception("handler failed for %s", ctx.path)
            error = StripeError(500, "An unknown error occurred in the sandbox.", type="api_error")
            return 500, orjson.dumps(error.body())
        finally:
            state.current_request = None
        status = 200
        if isinstance(result, tuple):
            status, result = result
        if ctx.params.get("expand"):
            result = expand_all(state, result, ctx.params["expand"])
        return status, orjson.dumps(result)
