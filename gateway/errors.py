"""problem+json errors: one mapping from gRPC status (and domain errors) to HTTP."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import grpc
import orjson
from starlette.responses import Response

from runtime.errors import CODE_KEY, DomainError, FieldError, RateLimited
from runtime.errors import from_rpc_error as domain_error_from_rpc

PROBLEM_JSON = "application/problem+json"

_HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNKNOWN: 502,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 503,
    grpc.StatusCode.UNIMPLEMENTED: 501,
}

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclass
class ApiError(Exception):
    """An error answered as problem+json."""

    status: int
    code: str
    detail: str
    errors: list[FieldError] = field(default_factory=list)
    retry_after: int | None = None
    # Headers the answer carries besides Retry-After (a 405's Allow).
    headers: dict[str, str] = field(default_factory=dict)


# Seconds a client is told to wait before retrying a 503: a crashed service is restarted and
# reached again within about a second (stack/supervisor.py, runtime.clients' reconnect backoff).
RETRY_AFTER_UNAVAILABLE_SECONDS = 1


def from_domain(error: DomainError) -> ApiError:
    status = _HTTP_STATUS.get(error.status, 500)
    retry_after = error.retry_after if isinstance(error, RateLimited) else None
    if status == 503:
        retry_after = RETRY_AFTER_UNAVAILABLE_SECONDS
    return ApiError(status, error.code, error.message, error.fields, retry_after)


def from_rpc_error(error: grpc.aio.AioRpcError) -> ApiError:
    """The domain error a service raised, as the client sees it; without a domain code the
    service itself could not be reached or failed."""
    if not any(key == CODE_KEY for key, _ in error.trailing_metadata() or ()):
        status_code = error.code()
        if status_code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return ApiError(
                503,
                "service_unavailable",
                "a platform service is unavailable, try again later",
                retry_after=RETRY_AFTER_UNAVAILABLE_SECONDS,
            )
        status = _HTTP_STATUS.get(status_code, 500)
        if status == 501:
            return ApiError(501, "not_implemented", "this operation is not implemented yet")
        return ApiError(500 if status < 500 else status, "internal_error", "internal error")
    api = from_domain(domain_error_from_rpc(error))
    if api.status >= 500 and api.code == "internal_error":
        api.detail = "internal error"
    return api


def _problem(error: ApiError, request_id: str) -> bytes:
    body: dict[str, object] = {
        "type": f"https://errors.collect.example/{error.code}",
        "title": _TITLES.get(error.status, "Error"),
        "status": error.status,
        "detail": error.detail,
        "code": error.code,
        "request_id": request_id,
    }
    if error.errors:
        body["errors"] = [{"field": e.field, "message": e.message} for e in error.errors]
    return orjson.dumps(body)


def problem_response(error: ApiError, request_id: str) -> Response:
    headers = dict(error.headers)
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return Response(_problem(error, request_id), error.status, headers, media_type=PROBLEM_JSON)


def malformed_request(message: str) -> tuple[str, bytes]:
    """The answer to a request the HTTP server cannot parse (`runtime.asgi_server`): problem+json too."""
    return PROBLEM_JSON, _problem(ApiError(400, "malformed_request", message), uuid.uuid4().hex)
