"""A Pennylane Company API v2 stand-in: the endpoints the platform's push uses, plus ``/_sandbox`` controls.

Real API (base ``/api/external/v2``, ``Authorization: Bearer <company token>``, 25 requests per
5 s per token → 429 with ``retry-after``): ``GET|POST /journals``, ``GET|POST /ledger_accounts``,
``GET|POST /ledger_entries``, ``GET /ledger_entries/{id}``, ``GET /ledger_entries/{id}/ledger_entry_lines``,
``GET /customers``,
``POST /company_customers``, ``GET|POST /customer_invoices``, ``GET /customer_invoices/{id}``,
``POST /customer_invoices/{id}/link_credit_note``. Lists take
``filter`` (a JSON array of ``{"field", "operator", "value"}``); ledger entries page with
``page``/``per_page``, the others with ``cursor``/``limit``.

Sandbox only (no token, never limited): ``POST /_sandbox/companies``, ``POST|DELETE /_sandbox/faults``,
``POST /_sandbox/reset``, ``GET /_sandbox/health``.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.pennylane.config import CompanyConfig, PennylaneSandboxConfig
from sandbox.pennylane.invoicing import create_customer, create_invoice, link_credit_note
from sandbox.pennylane.listing import cursor_page, filtered, numbered_page
from sandbox.pennylane.state import ApiError, Company, SandboxState

__all__ = ["API", "create_app"]

API = "/api/external/v2"
_Handler = Callable[[Request, SandboxState, Company], Awaitable[Response]]


def create_app(config: PennylaneSandboxConfig | None = None) -> Starlette:
    """Build the sandbox app; its state is ``app.state.sandbox`` (a :class:`SandboxState`)."""
    state = SandboxState(config or PennylaneSandboxConfig())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield

    routes = [
        Route(f"{API}/journals", _api(_list_journals), methods=["GET"]),
        Route(f"{API}/journals", _api(_create_journal), methods=["POST"]),
        Route(f"{API}/ledger_accounts", _api(_list_accounts), methods=["GET"]),
        Route(f"{API}/ledger_accounts", _api(_create_account), methods=["POST"]),
        Route(f"{API}/ledger_entries", _api(_list_entries), methods=["GET"]),
        Route(f"{API}/ledger_entries", _api(_create_entry), methods=["POST"]),
        Route(f"{API}/ledger_entries/{{entry_id:int}}", _api(_get_entry), methods=["GET"]),
        Route(f"{API}/ledger_entries/{{entry_id:int}}/ledger_entry_lines", _api(_entry_lines), methods=["GET"]),
        Route(f"{API}/customers", _api(_list_customers), methods=["GET"]),
        Route(f"{API}/company_customers", _api(_create_customer), methods=["POST"]),
        Route(f"{API}/customer_invoices", _api(_list_invoices), methods=["GET"]),
        Route(f"{API}/customer_invoices", _api(_create_invoice), methods=["POST"]),
        Route(f"{API}/customer_invoices/{{invoice_id:int}}", _api(_get_invoice), methods=["GET"]),
        Route(
            f"{API}/customer_invoices/{{invoice_id:int}}/link_credit_note", _api(_link_credit_note), methods=["POST"]
        ),
        Route("/_sandbox/health", _health, methods=["GET"]),
        Route("/_sandbox/companies", _add_company, methods=["POST"]),
        Route("/_sandbox/faults", _add_faults, methods=["POST"]),
        Route("/_sandbox/faults", _clear_faults, methods=["DELETE"]),
        Route("/_sandbox/reset", _reset, methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            ApiError: _api_error,  # type: ignore[dict-item]
            HTTPException: _http_error,  # type: ignore[dict-item]
        },
    )
    app.state.sandbox = state
    return app


# ---- plumbing ----------------------------------------------------------------------------


async def _api_error(request: Request, exc: ApiError) -> Response:
    return JSONResponse(exc.body(), status_code=exc.status)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    error = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
    return JSONResponse({"error": error, "message": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def _limit_headers(state: SandboxState, remaining: int) -> dict[str, str]:
    reset = math.ceil(time.time() + state.config.rate_window_seconds)
    return {
        "ratelimit-limit": str(state.config.rate_limit),
        "ratelimit-remaining": str(max(remaining, 0)),
        "ratelimit-reset": str(reset),
    }


def _api(handler: _Handler) -> Callable[[Request], Awaitable[Response]]:
    """A real-API endpoint: injected faults, then the bearer token, then its rate limit."""

    async def endpoint(request: Request) -> Response:
        state: SandboxState = request.app.state.sandbox
        state.requests += 1
        fault = state.faults.take()
        if fault is not None:
            headers = {"retry-after": str(fault.retry_after)} if fault.retry_after is not None else {}
            error = "too_many_requests" if fault.status == 429 else "internal_server_error"
            return JSONResponse(
                {"error": error, "message": "fault injected by the Pennylane sandbox"},
                status_code=fault.status,
                headers=headers,
            )
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        company = state.company(token.strip() if scheme.lower() == "bearer" else "")
        wait = state.rate_limiter.check(company.token)
        if wait is not None:
            state.refused += 1
            headers = {"retry-after": str(wait), **_limit_headers(state, 0)}
            message = f"Rate limit exceeded. Please retry in {wait} seconds."
            return JSONResponse({"error": "too_many_requests", "message": message}, status_code=429, headers=headers)
        response = await handler(request, state, company)
        used = state.rate_limiter.used(company.token)
        response.headers.update(_limit_headers(state, state.config.rate_limit - used))
        return response

    return endpoint


async def _json_object(request: Request) -> dict[str, Any]:
    body = await request.body()
    try:
        document = json.loads(body) if body.strip() else {}
    except ValueError:
        raise ApiError(400, "bad_request", "the request body is not valid JSON") from None
    if not isinstance(document, dict):
        raise ApiError(400, "bad_request", "the request body must be a JSON object")
    return document


# ---- the Pennylane API ---------------------------------------------------------------------


async def _list_journals(request: Request, state: SandboxState, company: Company) -> Response:
    items = filtered(list(company.journals.values()), request.query_params.get("filter"), {"id", "code"})
    return JSONResponse(cursor_page(items, request.query_params))


async def _create_journal(request: Request, state: SandboxState, company: Company) -> Response:
    return JSONResponse(state.create_journal(company, await _json_object(request)), status_code=201)


async def _list_accounts(request: Request, state: SandboxState, company: Company) -> Response:
    items = filtered(list(company.accounts.values()), request.query_params.get("filter"), {"id", "number"})
    return JSONResponse(cursor_page(items, request.query_params))


async def _create_account(request: Request, state: SandboxState, company: Company) -> Response:
    return JSONResponse(state.create_account(company, await _json_object(request)), status_code=201)


async def _list_entries(request: Request, state: SandboxState, company: Company) -> Response:
    fields = {"journal_id", "date", "created_at", "updated_at"}
    items = filtered(list(company.entries.values()), request.query_params.get("filter"), fields)
    return JSONResponse(numbered_page(items, request.query_params))


async def _created(request: Request, state: SandboxState, stored: dict[str, Any], status: int = 201) -> Response:
    """The answer of a creation (or a link) already stored: held by a test's gate, or lost, or 201."""
    gate = state.gate
    if gate is not None and gate.path in (None, request.url.path.removeprefix(API)):
        gate.committed.set()  # committed; the answer waits (a test stops the client meanwhile)
        await gate.release.wait()
    if state.lost_answers:
        lost = state.lost_answers.pop(0)
        return JSONResponse({"error": "internal_server_error", "message": "answer lost"}, status_code=lost)
    return JSONResponse(stored, status_code=status)


async def _create_entry(request: Request, state: SandboxState, company: Company) -> Response:
    return await _created(request, state, state.create_entry(company, await _json_object(request)))


async def _get_entry(request: Request, state: SandboxState, company: Company) -> Response:
    return JSONResponse(state.entry(company, request.path_params["entry_id"]))


async def _entry_lines(request: Request, state: SandboxState, company: Company) -> Response:
    lines = state.entry(company, request.path_params["entry_id"])["ledger_entry_lines"]
    return JSONResponse(cursor_page(lines, request.query_params))


async def _list_customers(request: Request, state: SandboxState, company: Company) -> Response:
    fields = {"id", "external_reference", "customer_type"}
    items = filtered(list(company.customers.values()), request.query_params.get("filter"), fields)
    return JSONResponse(cursor_page(items, request.query_params))


async def _create_customer(request: Request, state: SandboxState, company: Company) -> Response:
    return await _created(request, state, create_customer(state, company, await _json_object(request)))


async def _list_invoices(request: Request, state: SandboxState, company: Company) -> Response:
    fields = {"id", "date", "customer_id", "invoice_number", "external_reference"}
    items = [{**i, "customer_id": i["customer"]["id"]} for i in company.invoices.values()]
    items = filtered(items, request.query_params.get("filter"), fields)
    return JSONResponse(cursor_page([_invoice_json(i) for i in items], request.query_params))


def _invoice_json(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != "customer_id"}


async def _create_invoice(request: Request, state: SandboxState, company: Company) -> Response:
    return await _created(request, state, create_invoice(state, company, await _json_object(request)))


async def _link_credit_note(request: Request, state: SandboxState, company: Company) -> Response:
    fields = await _json_object(request)
    linked = link_credit_note(state, company, request.path_params["invoice_id"], fields)
    return await _created(request, state, linked, status=200)  # a link is answered like a creation


async def _get_invoice(request: Request, state: SandboxState, company: Company) -> Response:
    found = company.invoices.get(request.path_params["invoice_id"])
    if found is None:
        raise ApiError(404, "not_found", "Customer invoice not found")
    return JSONResponse(found)


# ---- sandbox controls --------------------------------------------------------------------


async def _health(request: Request) -> Response:
    state: SandboxState = request.app.state.sandbox
    entries = sum(len(c.entries) for c in state.companies.values())
    invoices = sum(len(c.invoices) for c in state.companies.values())
    body = {"status": "ok", "companies": len(state.companies), "ledger_entries": entries, "customer_invoices": invoices}
    return JSONResponse(body)


def company_json(company: Company) -> dict[str, Any]:
    """A company as the controls answer it: its token and the ids of its journals and accounts."""
    return {
        "id": company.id,
        "name": company.name,
        "token": company.token,
        "journals": {j["code"]: j["id"] for j in company.journals.values()},
        "ledger_accounts": {a["number"]: a["id"] for a in company.accounts.values()},
    }


async def _add_company(request: Request) -> Response:
    state: SandboxState = request.app.state.sandbox
    fields = await _json_object(request)
    name, token = fields.get("name"), fields.get("token")
    if not isinstance(name, str) or not name.strip():
        raise ApiError(422, "unprocessable_entity", "name is required", "name", "is required")
    if not isinstance(token, str) or len(token) < 8:
        raise ApiError(422, "unprocessable_entity", "token must have 8 characters or more", "token", "too short")
    return JSONResponse(company_json(state.add_company(CompanyConfig(name, token))), status_code=201)


async def _add_faults(request: Request) -> Response:
    state: SandboxState = request.app.state.sandbox
    fields = await _json_object(request)
    status, count, retry_after = fields.get("status"), fields.get("count", 1), fields.get("retry_after")
    if not isinstance(status, int) or not isinstance(count, int) or count < 1:
        raise ApiError(422, "unprocessable_entity", "status and count must be integers", "status", "invalid")
    if retry_after is not None and not isinstance(retry_after, int):
        raise ApiError(422, "unprocessable_entity", "retry_after must be whole seconds", "retry_after", "invalid")
    if fields.get("after_commit"):
        if status not in (500, 502, 503, 504):
            raise ApiError(422, "unprocessable_entity", "a lost answer is a 5xx", "status", "invalid")
        state.lost_answers.extend([status] * count)
    else:
        try:
            state.faults.add(status, count, retry_after)
        except ValueError as exc:
            raise ApiError(422, "unprocessable_entity", str(exc), "status", "invalid") from None
    return JSONResponse({"queued": state.faults.remaining + len(state.lost_answers)}, status_code=201)


async def _clear_faults(request: Request) -> Response:
    state: SandboxState = request.app.state.sandbox
    state.faults.clear()
    state.lost_answers.clear()
    return Response(status_code=204)


async def _reset(request: Request) -> Response:
    state: SandboxState = request.app.state.sandbox
    state.reset()
    return JSONResponse({"status": "reset"})
