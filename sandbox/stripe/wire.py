"""Stripe's wire format: bracket-nested form bodies, typed parameters, error objects and auth."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qsl

import orjson

Params = dict[str, Any]


class StripeError(Exception):
    """An API error rendered as Stripe's `{"error": {...}}` object."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param is not None:
            error["param"] = self.param
        if self.decline_code is not None:
            error["decline_code"] = self.decline_code
        error.update(self.extra)
        return {"error": error}


def malformed_request(message: str) -> tuple[str, bytes]:
    """The answer to a request the HTTP server cannot parse (`runtime.asgi_server`), as Stripe's error."""
    return "application/json", orjson.dumps(StripeError(400, message).body())


def invalid(message: str, *, param: str | None = None, code: str | None = None) -> StripeError:
    return StripeError(400, message, param=param, code=code)


def missing(param: str) -> StripeError:
    return StripeError(400, f"Missing required param: {param}.", param=param, code="parameter_missing")


def not_found(kind: str, object_id: str, param: str = "id") -> StripeError:
    return StripeError(404, f"No such {kind}: '{object_id}'", param=param, code="resource_missing")


def unrecognized(method: str, path: str) -> StripeError:
    """Stripe's answer to a path (or a method on it) it does not serve: 404, whatever the method."""
    return StripeError(
        404,
        f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help at "
        "https://support.stripe.com/.",
    )


def unauthorized(message: str) -> StripeError:
    return StripeError(401, message)


# --- parsing -------------------------------------------------------------------------------------


def _split_key(key: str) -> list[str]:
    if "[" not in key:
        return [key]
    head, _, rest = key.partition("[")
    parts = [head]
    for piece in rest.split("["):
        parts.append(piece[:-1] if piece.endswith("]") else piece)
    return parts


def _listify(value: Any, under_metadata: bool = False) -> Any:
    if isinstance(value, dict):
        if not under_metadata and value and all(k.isascii() and k.isdigit() for k in value):
            return [_listify(value[k]) for k in sorted(value, key=int)]
        return {k: _listify(v, k == "metadata") for k, v in value.items()}
    return value


def parse_form(raw: str) -> Params:
    """Decode `a[b][0]=x&c[]=y` into nested dicts and lists, the way Stripe reads its bodies."""
    if not raw:
        return {}
    result: Params = {}
    nested = False
    for key, value in parse_qsl(raw, keep_blank_values=True):
        if "[" not in key:
            result[key] = value
            continue
        nested = True
        parts = _split_key(key)
        node: dict[str, Any] = result
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            if parts[i + 1] == "":
                # `[]` appends: use the next free index.
                parts[i + 1] = str(len(child))
            node = child
        node[parts[-1]] = value
    return _listify(result) if nested else result


# --- typed access ----------------------------------------------------------------------------------


def get_str(params: Params, name: str, *, required: bool = False) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise missing(name)
        return None
    if not isinstance(value, str):
        raise invalid(f"Invalid string: {name}", param=name, code="parameter_invalid_string")
    return value


def get_int(params: Params, name: str, *, required: bool = False, minimum: int | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise missing(name)
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise invalid(f"Invalid integer: {value}", param=name, code="parameter_invalid_integer") from None
    if minimum is not None and number < minimum:
        raise invalid(
            f"This value must be greater than or equal to {minimum}.",
            param=name,
            code="parameter_invalid_integer",
        )
    return number


def get_bool(params: Params, name: str, default: bool = False) -> bool:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if value in ("true", "True", "1"):
        return True
    if value in ("false", "False", "0"):
        return False
    raise invalid(f"Invalid boolean: {value}", param=name, code="parameter_invalid_boolean")


def get_dict(params: Params, name: str) -> dict[str, Any] | None:
    value = params.get(name)
    if value is None:
        return None
    if value == "":
        return {}
    if not isinstance(value, dict):
        raise invalid(f"Invalid hash: {name}", param=name)
    return value


def get_list(params: Params, name: str) -> list[Any] | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, dict):
        return list(value.values())
    return list(value)


def apply_metadata(target: dict[str, Any], params: Params) -> None:
    """Stripe metadata semantics: `metadata=""` clears, `metadata[k]=""` removes one key."""
    if "metadata" not in params:
        return
    update = get_dict(params, "metadata")
    if update == {}:
        target["metadata"] = {}
        return
    metadata = dict(target.get("metadata") or {})
    for key, value in (update or {}).items():
        if value == "" or value is None:
            metadata.pop(key, None)
        else:
            metadata[key] = str(value)
    target["metadata"] = metadata


# --- auth --------------------------------------------------------------------------------------------


def api_key_from(authorization: str | None) -> str:
    """Extract and check a secret test key from a Bearer or Basic Authorization header."""
    if not authorization:
        raise unauthorized(
            "You did not provide an API key. You need to provide your API key in the Authorization "
            "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
        )
    scheme, _, credentials = authorization.partition(" ")
    scheme = scheme.lower()
    key = ""
    if scheme == "bearer":
        key = credentials.strip()
    elif scheme == "basic":
        try:
            key = base64.b64decode(credentials.strip()).decode().partition(":")[0]
        except (ValueError, UnicodeDecodeError):
            key = ""
    if not key.startswith("sk_test_") or len(key) <= len("sk_test_"):
        shown = f"{key[:8]}{'*' * 4}{key[-4:]}" if len(key) > 12 else "****"
        raise unauthorized(f"Invalid API Key provided: {shown}")
    return key
