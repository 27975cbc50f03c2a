"""The gateway's trace context when no span is kept: the caller's trace goes on, else a new one."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from gateway.middleware import RequestContextMiddleware, TraceContextMiddleware
from runtime.tracing import current_trace_id

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


async def _seen(_request: Request) -> PlainTextResponse:
    return PlainTextResponse(current_trace_id() or "")


def _client() -> httpx.AsyncClient:
    app = Starlette(
        routes=[Route("/seen", _seen)],
        middleware=[
            Middleware(TraceContextMiddleware),  # type: ignore[arg-type]
            Middleware(RequestContextMiddleware, max_body_bytes=1024),  # type: ignore[arg-type]
        ],
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway.test")


async def test_the_callers_trace_goes_on() -> None:
    async with _client() as http:
        answer = await http.get("/seen", headers={"traceparent": f"00-{CALLER_TRACE}-00f067aa0ba902b7-00"})
    assert answer.text == CALLER_TRACE
    assert answer.headers["traceparent"].split("-")[1] == CALLER_TRACE


async def test_a_request_without_one_starts_its_own() -> None:
    async with _client() as http:
        first, second = await http.get("/seen"), await http.get("/seen", headers={"traceparent": "garbage"})
    for answer in (first, second):
        assert len(answer.text) == 32 and int(answer.text, 16) != 0
        assert answer.headers["traceparent"].split("-")[1] == answer.text
    assert first.text != second.text
