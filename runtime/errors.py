"""Domain errors shared by every service, and their one mapping to gRPC status codes.

A service raises these; the server interceptor turns them into a gRPC status whose
trailing metadata carries the stable `code` (and field errors), which the gateway maps to
problem+json.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import grpc
import orjson

CODE_KEY = "x-error-code"
FIELDS_KEY = "x-error-fields"
RETRY_AFTER_KEY = "x-retry-after"


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


@dataclass
class DomainError(Exception):
    """Base of every expected failure; `code` is stable snake_case."""

    message: str
    code: str = "error"
    fields: list[FieldError] = field(default_factory=list)
    status: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __str__(self) -> str:
        return self.message


class InvalidArgument(DomainError):
    def __init__(self, message: str, code: str = "invalid_request", fields: list[FieldError] | None = None):
        super().__init__(message, code, fields or [], grpc.StatusCode.INVALID_ARGUMENT)


class NotFound(DomainError):
    def __init__(self, message: str = "not found", code: str = "not_found"):
        super().__init__(message, code, [], grpc.StatusCode.NOT_FOUND)


class AlreadyExists(DomainError):
    def __init__(self, message: str, code: str = "already_exists"):
        super().__init__(message, code, [], grpc.StatusCode.ALREADY_EXISTS)


class Conflict(DomainError):
    """The current state forbids the action (409)."""

    def __init__(self, message: str, code: str = "conflict"):
        super().__init__(message, code, [], grpc.StatusCode.FAILED_PRECONDITION)


class Unauthenticated(DomainError):
    def __init__(self, message: str = "authentication required", code: str = "unauthenticated"):
        super().__init__(message, code, [], grpc.StatusCode.UNAUTHENTICATED)


class PermissionDenied(DomainError):
    def __init__(self, message: str = "your role does not allow this", code: str = "forbidden"):
        super().__init__(message, code, [], grpc.StatusCode.PERMISSION_DENIED)


class RateLimited(DomainError):
    def __init__(self, message: str, retry_after: int, code: str = "rate_limited"):
        super().__init__(message, code, [], grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """An outside dependency (Stripe, Qonto, another service) cannot be reached (503)."""

    def __init__(self, message: str, code: str = "upstream_unavailable"):
        super().__init__(message, code, [], grpc.StatusCode.UNAVAILABLE)


class UpstreamError(DomainError):
    """An outside dependency answered with an error we cannot pass on as the caller's fault (502)."""

    def __init__(self, message: str, code: str = "upstream_error"):
        super().__init__(message, code, [], grpc.StatusCode.UNKNOWN)


def trailing_metadata(error: DomainError) -> tuple[tuple[str, str], ...]:
    metadata: list[tuple[str, str]] = [(CODE_KEY, error.code)]
    if error.fields:
        payload = [{"field": f.field, "message": f.message} for f in error.fields]
        # A header value is printable ASCII: a field error quoting the input (an entity's name) is escaped.
        metadata.append((FIELDS_KEY, json.dumps(payload, ensure_ascii=True, separators=(",", ":"))))
    if isinstance(error, RateLimited):
        metadata.append((RETRY_AFTER_KEY, str(error.retry_after)))
    return tuple(metadata)


def from_rpc_error(error: grpc.aio.AioRpcError) -> DomainError:
    """Rebuilds the domain error another service raised, so it can be passed on as is."""
    metadata = {k: v for k, v in (error.trailing_metadata() or ()) if isinstance(v, str)}
    code = metadata.get(CODE_KEY)
    message = error.details() or ""
    status = error.code()
    if status in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) and code is None:
        return Unavailable(f"internal service unavailable: {message}", "service_unavailable")
    fields = [FieldError(f["field"], f["message"]) for f in orjson.loads(metadata.get(FIELDS_KEY, "[]"))]
    if status == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return RateLimited(message, int(metadata.get(RETRY_AFTER_KEY, "1")), code or "rate_limited")
    return DomainError(message, code or "internal_error", fields, status)
