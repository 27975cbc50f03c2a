"""The gateway's router picks the route Starlette's own would, for every path of the API."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, Router

from gateway.app import ROUTE_MODULES
from gateway.routing import IndexedRouter

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _routes() -> list[Route]:
    """The app's routes, in its order, each answering its own position."""
    found = [route for module in ROUTE_MODULES for route in module.routes if isinstance(route, Route)]

    def endpoint(position: int) -> Any:
        async def answer(_request: Request) -> PlainTextResponse:
            return PlainTextResponse(str(position))

        return answer

    return [Route(r.path, endpoint(i), methods=sorted(r.methods or ())) for i, r in enumerate(found)]


async def _answer(router: Router, method: str, path: str) -> tuple[int, bytes]:
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "root_path": "", "query_string": b"", "headers": []}
    await router(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


PATHS = sorted({r.path for r in _routes()} | {"/v1/payments/", "/v1/nowhere", "/v1/me/", "/"})


@pytest.mark.parametrize("path", PATHS)
async def test_same_route_as_starlette(path: str) -> None:
    routes = _routes()
    plain, indexed = Router(routes), IndexedRouter(routes)
    for method in METHODS:
        assert await _answer(indexed, method, path) == await _answer(plain, method, path), (method, path)
