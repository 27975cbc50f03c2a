"""problem+json errors: one mapping from gRPC status (and domain errors) to HTTP."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
import orjson
from starlette.responses import Response

from runtime.errors import CODE_KEY, FIELDS_KEY, RETRY_AFTER_KEY, DomainError, FieldError, RateLimited

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


def from_domain(error: DomainError) -> ApiError:
    status = _HTTP_STATUS.get(error.status, 500)
    retry_after = error.retry_after if isinstance(error, RateLimited) else None
    return ApiError(status, error.code, error.message, error.fields, retry_after)


def from_rpc_error(error: grpc.aio.AioRpcError) -> ApiError:
    metadata = {k: v for k, v in (error.trailing_metadata() or ()) if isinstance(v, str)}
    status_code = error.code()
    status = _HTTP_STATUS.get(status_code, 500)
    code = metadata.get(CODE_KEY)
    detail = error.details() or ""
    if code is None:
        # No domain code: the service itself could not be reached or failed.
        if status_code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return ApiError(503, "service_unavailable", "a platform service is unavailable, try again later")
        if status == 501:
            return ApiError(501, "not_implemented", "this operation is not implemented yet")
        return ApiError(500 if status < 500 else status, "internal_error", "internal error")
    fields = [FieldError(f["field"], f["message"]) for f in orjson.loads(metadata.get(FIELDS_KEY, "[]"))]
    retry_after = int(metadata[RETRY_AFTER_KEY]) if RETRY_AFTER_KEY in metadata else None
    if status >= 500 and code == "internal_error":
        detail = "internal error"
    return ApiError(status, code, detail, fields, retry_after)


def problem_response(error: ApiError, request_id: str) -> Response:
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
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else None
    return Response(orjson.dumps(body), error.status, headers, media_type="application/problem+json")
