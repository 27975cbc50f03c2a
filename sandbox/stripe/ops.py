"""Sandbox-only endpoints under `/_sandbox`: health, config, faults, request log, webhooks, shortcuts."""

from __future__ import annotations

import html
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from .resources import payouts
from .resources.accounts import complete_onboarding
from .state import SandboxState
from .wire import StripeError, not_found


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


def _state(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    data = orjson.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


async def health(request: Request) -> Response:
    return _json({"status": "ok"})


async def reset(request: Request) -> Response:
    _state(request).reset()
    return _json({"status": "ok"})


async def get_config(request: Request) -> Response:
    return _json(_state(request).config.as_dict())


async def set_config(request: Request) -> Response:
    state = _state(request)
    try:
        state.config.update(await _body(request))
    except (KeyError, ValueError, TypeError) as exc:
        return _json({"error": {"type": "invalid_request_error", "message": f"bad config: {exc}"}}, 400)
    return _json(state.config.as_dict())


async def fail(request: Request) -> Response:
    state = _state(request)
    data = await _body(request)
    status = int(data.get("status", 500))
    if status != 429 and not 500 <= status <= 599:
        return _json({"error": {"type": "invalid_request_error", "message": "status must be 429 or 5xx"}}, 400)
    state.faults.fail_next = int(data.get("fail_next", 1))
    state.faults.status = status
    state.faults.after = bool(data.get("after", False))
    return _json({"fail_next": state.faults.fail_next, "status": status, "after": state.faults.after})


async def requests_log(request: Request) -> Response:
    state = _state(request)
    limit = int(request.query_params.get("limit", "100"))
    entries = list(state.requests)[-limit:] if limit > 0 else []
    entries.reverse()
    return _json({"data": entries})


async def webhooks_pending(request: Request) -> Response:
    state = _state(request)
    wait = request.query_params.get("wait")
    if wait:
        await state.deliveries_idle(float(wait))
    return _json({"pending": state.webhooks.pending})


async def webhook_attempts(request: Request) -> Response:
    state = _state(request)
    limit = int(request.query_params.get("limit", "100"))
    entries = list(state.webhooks.attempts)[-limit:] if limit > 0 else []
    entries.reverse()
    return _json({"data": entries})


def _payout_owner(request: Request) -> tuple[str, str]:
    """The payout named in the path and its account; a missing id or another object is a 404."""
    state = _state(request)
    payout_id = request.path_params["payout"]
    owner = state.store.account_of(payout_id)
    if owner is None:
        raise not_found("Payout", payout_id)
    state.store.get(owner, payout_id, "payout", "Payout")  # 404 unless it is a payout
    return payout_id, owner


async def pay_payout(request: Request) -> Response:
    try:
        payout_id, owner = _payout_owner(request)
    except StripeError as error:
        return _json(error.body(), error.status)
    return _json(payouts.pay(_state(request), owner, payout_id))


async def fail_payout(request: Request) -> Response:
    try:
        payout_id, owner = _payout_owner(request)
    except StripeError as error:
        return _json(error.body(), error.status)
    data = await _body(request)
    return _json(payouts.fail(_state(request), owner, payout_id, str(data.get("failure_code", "account_closed"))))


async def onboard_account(request: Request) -> Response:
    """Shortcut for tests: what completing the hosted onboarding does, without the redirect."""
    state = _state(request)
    account = state.account(request.path_params["account"])
    if account is None:
        missing = not_found("Account", request.path_params["account"])
        return _json(missing.body(), missing.status)
    complete_onboarding(state, account)
    state.dirty = True
    return _json(account)


async def release_balance(request: Request) -> Response:
    state = _state(request)
    data = await _body(request)
    released = state.ledger.release_pending(data.get("account"), force=True)
    return _json({"released": released})


async def onboarding(request: Request) -> Response:
    """The hosted onboarding page an account link points to: visiting it completes onboarding."""
    state = _state(request)
    link = state.onboarding_links.get(request.path_params["token"])
    if link is None:
        return HTMLResponse("<h1>Unknown onboarding link</h1>", 404)
    if link["used"] or link["expires_at"] < time.time():
        return RedirectResponse(link["refresh_url"], 302)
    link["used"] = True
    account = state.account(link["account"])
    if account is not None:
        complete_onboarding(state, account)
    state.dirty = True
    return RedirectResponse(link["return_url"], 302)


async def express_dashboard(request: Request) -> Response:
    account = html.escape(request.path_params["account"])
    return HTMLResponse(f"<h1>Sandbox Express dashboard for {account}</h1>")


ROUTES = [
    Route("/_sandbox/health", health, methods=["GET"]),
    Route("/_sandbox/reset", reset, methods=["POST"]),
    Route("/_sandbox/config", get_config, methods=["GET"]),
    Route("/_sandbox/config", set_config, methods=["POST"]),
    Route("/_sandbox/fail", fail, methods=["POST"]),
    Route("/_sandbox/requests", requests_log, methods=["GET"]),
    Route("/_sandbox/webhooks/pending", webhooks_pending, methods=["GET"]),
    Route("/_sandbox/webhooks/attempts", webhook_attempts, methods=["GET"]),
    Route("/_sandbox/payouts/{payout}/pay", pay_payout, methods=["POST"]),
    Route("/_sandbox/payouts/{payout}/fail", fail_payout, methods=["POST"]),
    Route("/_sandbox/accounts/{account}/onboard", onboard_account, methods=["POST"]),
    Route("/_sandbox/balance/release", release_balance, methods=["POST"]),
    Route("/_sandbox/onboarding/{token}", onboarding, methods=["GET"]),
    Route("/_sandbox/express/{account}", express_dashboard, methods=["GET"]),
]
