"""Pure ASGI middleware: request id, traceparent response header, early body-size refusal."""

from __future__ import annotations

import uuid

from opentelemetry.propagate import inject
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import ApiError, problem_response
from runtime.logs import set_request_id


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
