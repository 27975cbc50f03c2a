"""Pure ASGI middleware: trace context when no span is kept, request id, traceparent response
header, early body-size refusal."""

from __future__ import annotations

import uuid

from opentelemetry import trace
from opentelemetry.propagate import extract, inject
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import ApiError, problem_response
from runtime.logs import set_request_id


class TraceContextMiddleware:
    """The request's trace (the caller's `traceparent`, or a new one) for its logs, its calls and
    its answer, when no span is kept (`runtime.tracing.recording()` false): OpenTelemetry's ASGI
    middleware then costs about a tenth of the gateway's CPU per request in attributes and
    wrappers nobody reads. With spans kept, the app uses that middleware instead."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._tracer = trace.get_tracer(__name__)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {
            key.decode("latin-1"): value.decode("latin-1")
            for key, value in scope.get("headers", [])
            if key in (b"traceparent", b"tracestate")
        }
        with self._tracer.start_as_current_span(
            scope["method"], context=extract(carrier) if carrier else None, kind=trace.SpanKind.SERVER
        ):
            await self.app(scope, receive, send)


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        set_request_id(request_id)
        carrier: dict[str, str] = {}
        inject(carrier)
        extra = [(b"x-request-id", request_id.encode())]
        if "traceparent" in carrier:
            extra.append((b"traceparent", carrier["traceparent"].encode()))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        length = _content_length(scope)
        if length is not None and length > self.max_body_bytes:
            error = ApiError(413, "body_too_large", f"the body must be at most {self.max_body_bytes} bytes")
            await problem_response(error, request_id)(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)


def _incoming_request_id(scope: Scope) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"x-request-id":
            candidate = value.decode("latin-1")
            if 0 < len(candidate) <= 128 and candidate.replace("-", "").isalnum():
                return candidate
    return None


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
