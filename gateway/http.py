"""Request helpers shared by the route modules: caller, JSON body, validation, responses."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import ApiError
from runtime.auth import Caller, TokenSigner, set_current_caller
from runtime.dates import parse_day, parse_instant
from runtime.errors import FieldError, InvalidArgument, Unauthenticated
from runtime.proto import from_timestamp


def caller(request: Request) -> Caller:
    """The verified caller (401 otherwise); also made current so gRPC calls forward its token."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthenticated", "a bearer token is required")
    signer: TokenSigner = request.app.state.signer
    try:
        found = signer.verify(token.strip())
    except Unauthenticated as error:
        raise ApiError(401, error.code, error.message) from None
    set_current_caller(found)
    return found


def client_address(request: Request) -> str:
    """The client's address: the connection's peer, or with `trusted_proxy_hops` proxies in front,
    the address the farthest trusted proxy saw (X-Forwarded-For, counted from the right)."""
    hops: int = request.app.state.settings.trusted_proxy_hops
    if hops > 0:
        forwarded = [part.strip() for part in request.headers.get("x-forwarded-for", "").split(",") if part.strip()]
        if len(forwarded) >= hops:
            return forwarded[-hops][:64]
    return request.client.host if request.client else ""


def require_role(found: Caller, *roles: str, organization_id: str | None = None) -> None:
    """403 when the caller's role is not among `roles`.

    With `organization_id` (a route naming an organisation), a member of another organisation
    gets 404 first, whatever its role: asking for another organisation's object never reveals
    that it exists (the contract's 404, not 403).
    """
    if organization_id is not None and not found.is_platform and organization_id != found.organization_id:
        raise ApiError(404, "not_found", "organization not found")
    if found.role not in roles and found.role != "service":
        raise ApiError(403, "forbidden", "your role does not allow this")


async def raw_body(request: Request) -> bytes:
    """The body as sent (webhook signatures are over these bytes); 413 past the limit."""
    limit: int = request.app.state.settings.max_body_bytes  # a declared length past it: refused by the middleware
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "body_too_large", f"the body must be at most {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(request: Request) -> dict[str, Any]:
    """The JSON object in the body; 413 over the limit, 400 when it is not a JSON object."""
    raw = await raw_body(request)
    if not raw:
        return {}  # no body: every field absent (whitespace alone is not a JSON document)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object")
    return body


T = TypeVar("T")
_MISSING = object()
# The widest integer a proto field holds (int64); larger JSON numbers are refused, not overflowed.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# C0 control characters but tab, line feed and carriage return: PostgreSQL cannot store NUL, and
# none of them belongs in a name, an id or a description.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def has_control_characters(value: str) -> bool:
    return _CONTROL.search(value) is not None


class Fields:
    """Collects every field error of a body, then raises one 400 with all of them."""

    def __init__(self, data: dict[str, Any], prefix: str = "", errors: list[FieldError] | None = None) -> None:
        self._data = data
        self._prefix = prefix
        self.errors: list[FieldError] = [] if errors is None else errors

    def _error(self, name: str, message: str) -> None:
        self.errors.append(FieldError(self._prefix + name, message))

    def _get(self, name: str, required: bool) -> Any:
        value = self._data.get(name, _MISSING)
        if value is _MISSING or value is None:
            if required:
                self._error(name, "is required")
            return _MISSING
        return value

    def text(
        self,
        name: str,
        *,
        required: bool = True,
        default: str = "",
        max_len: int = 500,
        choices: Sequence[str] | None = None,
        pattern: str | None = None,
    ) -> str:
        value = self._get(name, required)
        if value is _MISSING:
            return default
        if not isinstance(value, str):
            self._error(name, "must be a string")
            return default
        if len(value) > max_len:
            self._error(name, f"must be at most {max_len} characters")
        elif has_control_characters(value):
            self._error(name, "must not contain control characters")
        elif choices is not None and value not in choices:
            self._error(name, f"must be one of {', '.join(choices)}")
        elif pattern is not None and not re.fullmatch(pattern, value):
            self._error(name, "has an invalid format")
        return value

    def integer(
        self,
        name: str,
        *,
        required: bool = True,
        default: int = 0,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int:
        value = self._get(name, required)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self._error(name, "must be an integer")
            return default
        low = INT64_MIN if minimum is None else minimum
        high = INT64_MAX if maximum is None else min(maximum, INT64_MAX)
        if value < low:
            self._error(name, f"must be at least {low}")
            return default
        if value > high:
            self._error(name, f"must be at most {high}")
            return default
        return value

    def count(self, name: str, *, default: int, minimum: int, maximum: int) -> int:
        """A whole number written in ASCII digits (a query parameter), within bounds."""
        value = self.text(name, required=False, max_len=20)
        if not value:
            return default
        # isdigit() alone takes "²" and other digits int() refuses.
        if not (value.isascii() and value.isdigit()) or not minimum <= int(value) <= maximum:
            self._error(name, f"must be {minimum}..{maximum}")
            return default
        return int(value)

    def day(self, name: str, *, required: bool = False) -> str:
        """A `YYYY-MM-DD` day in the supported range (runtime.dates), as sent."""
        value = self.text(name, required=required, max_len=10)
        if not value and self._data.get(name) == "":
            self._error(name, "must be a YYYY-MM-DD day")  # sent empty: leave it out for no bound
        self._parsed(parse_day, name, value)
        return value

    def instant(self, name: str, *, required: bool = False) -> datetime | None:
        """An RFC 3339 timestamp with its offset, in the supported range (runtime.dates)."""
        value = self.text(name, required=required, max_len=40)
        if not value and self._data.get(name) == "":
            self._error(name, "must be an RFC 3339 timestamp")  # sent empty: leave it out for no bound
        return self._parsed(parse_instant, name, value)

    def _parsed(self, parse: Callable[[str, str], T | None], name: str, value: str) -> T | None:
        if not value or any(error.field == self._prefix + name for error in self.errors):
            return None
        try:
            return parse(value, self._prefix + name)
        except InvalidArgument as error:
            self.errors.extend(error.fields)
            return None

    def boolean(self, name: str, *, required: bool = False, default: bool = False) -> bool:
        value = self._get(name, required)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self._error(name, "must be true or false")
            return default
        return value

    def obj(self, name: str, *, required: bool = True) -> Fields:
        value = self._get(name, required)
        if value is not _MISSING and not isinstance(value, dict):
            self._error(name, "must be an object")
        # Nested errors land in this body's list, under their full field names.
        return Fields(value if isinstance(value, dict) else {}, f"{self._prefix}{name}.", self.errors)

    def array(self, name: str, *, required: bool = True, max_items: int = 500) -> list[Any]:
        value = self._get(name, required)
        if value is _MISSING:
            return []
        if not isinstance(value, list):
            self._error(name, "must be an array")
            return []
        if len(value) > max_items:
            self._error(name, f"must have at most {max_items} items")
        return value

    def string_map(self, name: str, *, required: bool = False, max_items: int = 50) -> dict[str, str]:
        value = self._get(name, required)
        if value is _MISSING:
            return {}
        if not isinstance(value, dict) or not all(
            isinstance(k, str)
            and isinstance(v, str)
            and len(k) <= 40
            and len(v) <= 500
            and not has_control_characters(k + v)
            for k, v in value.items()
        ):
            self._error(name, "must be an object of short strings")
            return {}
        if len(value) > max_items:
            self._error(name, f"must have at most {max_items} keys")
        return value

    def check(self) -> None:
        if self.errors:
            raise ApiError(400, "validation_error", "the request is invalid", self.errors)


def idempotency_key(request: Request) -> str:
    """The Idempotency-Key header a creating call must carry (up to 255 characters)."""
    key = request.headers.get("idempotency-key", "").strip()
    if not key or len(key) > 255:
        raise ApiError(
            400,
            "idempotency_key_required",
            "the Idempotency-Key header is required (up to 255 characters)",
            [FieldError("Idempotency-Key", "required, up to 255 characters")],
        )
    return key


def query_fields(request: Request) -> Fields:
    """The query parameters, checked like a body's fields (the last value of a repeated name)."""
    return Fields(dict(request.query_params))


def org_query(request: Request) -> str:
    """The `organization_id` query parameter (platform admins name the organisation)."""
    return request.query_params.get("organization_id", "")


def rfc3339(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def timestamp_json(stamp: Any) -> str | None:
    """RFC 3339 for a protobuf Timestamp; None when unset."""
    return rfc3339(from_timestamp(stamp))


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status, headers, media_type="application/json")
