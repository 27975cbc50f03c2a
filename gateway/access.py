"""Pure ASGI middleware: one access-log line and one duration sample per HTTP request.

Placed inside the OpenTelemetry middleware (the line carries the request's trace id) and
outside the request-context middleware (so that its early refusals are counted too). The route
is the matched route's template (`/v1/payments/{payment_id}`), never the raw path: unmatched
paths count under "unmatched".
"""

from __future__ import annotations

import logging
import time

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtime.logs import current_request_id
from runtime.metrics import http_duration

log = logging.getLogger("gateway.access")
UNMATCHED = "unmatched"


class AccessMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._labels: dict[tuple[str, str, int], dict[str, str | int]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            method = scope["method"]
            http_duration.record(elapsed, self._attributes(route, method, status))
            log.info(
                "%s %s %d",
                method,
                route,
                status,
                extra={
                    "request_id": current_request_id() or scope.get("state", {}).get("request_id"),
                    "route": route,
                    "method": method,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )

    def _attributes(self, route: str, method: str, status: int) -> dict[str, str | int]:
        key = (route, method, status)
        found = self._labels.get(key)
        if found is None:
            found = http_duration.attributes(
                http_route=route, http_request_method=method, http_response_status_code=status
            )
            if len(self._labels) < 10_000:  # routes x methods x statuses: bounded, but never a leak
                self._labels[key] = found
        return found


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    # Refused before routing (e.g. a body too large): find the route it would have matched.
    app = scope.get("app")
    router = getattr(app, "router", None)
    for candidate in getattr(router, "routes", ()):
        match, _ = candidate.matches({**scope, "type": "http"})
        if match is not Match.NONE:
            return str(getattr(candidate, "path", UNMATCHED))
    return UNMATCHED
