"""Every `/v1` request checked against Stripe's published OpenAPI description, before any handler.

`openapi/spec3.json` describes, per operation, the form body (`requestBody`) and the query
parameters. At start each operation the router serves gets one compiled checker (closures, no
schema walking per request) that answers as Stripe does: `parameter_unknown`,
`parameter_missing`, `parameter_invalid_integer`, `parameter_invalid_empty`, bad booleans,
enums and over-long strings, each with its `param` (`transfer_data[destination]`, `expand[0]`).

The description is dated 2020-08-27; what the platform (and the current SDK) sends beyond it is
declared once in `spec_extensions.py`, each entry with its reason.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from .spec_extensions import NEWER_ENUM_VALUES, NEWER_PARAMETERS
from .wire import Params, StripeError, invalid, missing

SPEC_PATH = Path(__file__).parent / "openapi" / "spec3.json"
_FORM = "application/x-www-form-urlencoded"
_INTEGER = re.compile(r"-?[0-9]+\Z")
_NUMBER = re.compile(r"-?([0-9]+(\.[0-9]*)?|\.[0-9]+)\Z")

# A checker takes the decoded value and the parameter's name as Stripe prints it; it raises.
Check = Callable[[Any, str], None]
Validate = Callable[[Params], None]


def _one_of(values: list[str]) -> str:
    shown = [v for v in values if v != ""]
    if len(shown) <= 1:
        return "".join(shown)
    return ", ".join(shown[:-1]) + f", or {shown[-1]}"


def _child(name: str, key: str | int) -> str:
    return f"{name}[{key}]" if name else str(key)


def _empty(name: str) -> StripeError:
    return invalid(
        f"You passed an empty string for '{name}'. We assume empty values are an attempt to unset a parameter; "
        f"however '{name}' cannot be unset. You should remove '{name}' from your request or supply a non-empty "
        "value.",
        param=name,
        code="parameter_invalid_empty",
    )


def unknown(name: str) -> StripeError:
    return invalid(f"Received unknown parameter: {name}", param=name, code="parameter_unknown")


class _Compiler:
    def __init__(self, components: dict[str, Any]) -> None:
        self.components = components

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.components[schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def compile(self, schema: dict[str, Any]) -> Check:
        schema = self.resolve(schema)
        if "anyOf" in schema or "oneOf" in schema:
            return self._any_of([self.resolve(s) for s in schema.get("anyOf") or schema["oneOf"]])
        kind = schema.get("type")
        if kind == "object":
            return self._object(schema)
        if kind == "array":
            return self._array(schema)
        if kind == "integer":
            return _integer
        if kind == "number":
            return _number
        if kind == "boolean":
            return _boolean
        if kind == "string":
            return self._string(schema)
        return _anything

    def _string(self, schema: dict[str, Any]) -> Check:
        listed: list[str] = schema.get("enum") or []
        allowed = frozenset(listed) if "enum" in schema else None
        limit = schema.get("maxLength")

        def check(value: Any, name: str) -> None:
            if not isinstance(value, str):
                raise invalid(f"Invalid string: {_shown(value)}", param=name)
            if allowed is not None:
                if value not in allowed:
                    if value == "":
                        raise _empty(name)
                    raise invalid(f"Invalid {name}: must be one of {_one_of(listed)}", param=name)
                return
            if value == "":
                raise _empty(name)
            if limit is not None and len(value) > limit:
                raise invalid(f"Invalid string: {value[:20]}...; must be at most {limit} characters", param=name)

        return check

    def _array(self, schema: dict[str, Any]) -> Check:
        item = self.compile(schema.get("items") or {})

        def check(value: Any, name: str) -> None:
            if isinstance(value, dict) and not value:
                value = []
            if not isinstance(value, list):
                raise invalid(f"Invalid array: {_shown(value)}", param=name)
            for i, element in enumerate(value):
                item(element, _child(name, i))

        return check

    def _object(self, schema: dict[str, Any]) -> Check:
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        if properties is None and extra in (None, True):
            return _any_hash
        checks = {key: self.compile(sub) for key, sub in (properties or {}).items()}
        other = self.compile(extra) if isinstance(extra, dict) else None
        required = tuple(schema.get("required") or ())

        def check(value: Any, name: str) -> None:
            if not isinstance(value, dict):
                raise invalid(f"Invalid hash: {_shown(value)}", param=name)
            for key, item in value.items():
                sub = checks.get(key)
                if sub is not None:
                    sub(item, _child(name, key))
                elif other is not None:
                    if item == "":
                        continue  # `metadata[k]=` removes one key
                    other(item, _child(name, key))
                else:
                    raise unknown(_child(name, key))
            for key in required:
                if key not in value:
                    raise missing(_child(name, key))

        return check

    def _any_of(self, alternatives: list[dict[str, Any]]) -> Check:
        compiled = [self.compile(s) for s in alternatives]
        allows_empty = any("" in (s.get("enum") or ()) for s in alternatives)
        scalar = [c for c, s in zip(compiled, alternatives, strict=True) if s.get("type") not in ("object", "array")]
        structured = [c for c, s in zip(compiled, alternatives, strict=True) if s.get("type") in ("object", "array")]

        def check(value: Any, name: str) -> None:
            if value == "" and allows_empty:
                return
            first: StripeError | None = None
            # The error reported is the one of the alternative shaped like the value.
            ordered = (*structured, *scalar) if isinstance(value, dict | list) else (*scalar, *structured)
            for alternative in ordered:
                try:
                    alternative(value, name)
                except StripeError as error:
                    first = first or error
                else:
                    return
            assert first is not None
            raise first

        return check


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return value[:40]
    if isinstance(value, dict):
        return "a hash"
    if isinstance(value, list):
        return "an array"
    return str(value)


def _anything(value: Any, name: str) -> None:
    return None


def _any_hash(value: Any, name: str) -> None:
    if not isinstance(value, dict) and value != "":
        raise invalid(f"Invalid hash: {_shown(value)}", param=name)


def _integer(value: Any, name: str) -> None:
    if isinstance(value, str) and _INTEGER.match(value):
        return
    if value == "":
        raise _empty(name)
    raise invalid(f"Invalid integer: {_shown(value)}", param=name, code="parameter_invalid_integer")


def _number(value: Any, name: str) -> None:
    if isinstance(value, str) and _NUMBER.match(value):
        return
    if value == "":
        raise _empty(name)
    raise invalid(f"Invalid decimal: {_shown(value)}", param=name)


def _boolean(value: Any, name: str) -> None:
    if value in ("true", "false"):
        return
    if value == "":
        raise _empty(name)
    raise invalid(f"Invalid boolean: {_shown(value)}", param=name)


def _top_level(properties: dict[str, Check], required: tuple[str, ...]) -> Validate:
    def validate(params: Params) -> None:
        for key, value in params.items():
            check = properties.get(key)
            if check is None:
                raise unknown(key)
            check(value, key)
        for key in required:
            if key not in params:
                raise missing(key)

    return validate


def normalise(path: str) -> str:
    """`/v1/charges/{charge}` and the router's `/v1/charges/{}` compare equal."""
    return re.sub(r"\{[^}]*\}", "{}", path)


@functools.cache
def load_spec() -> dict[str, Any]:
    spec: dict[str, Any] = orjson.loads(SPEC_PATH.read_bytes())
    return spec


def _parameters(method: str, operation: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The operation's parameters as (name → schema, required names): the form body of a POST,
    the query of a GET or DELETE (whose empty `requestBody` in the description says: no body)."""
    body = (operation.get("requestBody") or {}).get("content", {}).get(_FORM, {}).get("schema")
    if method == "post" and body is not None:
        return dict(body.get("properties") or {}), tuple(body.get("required") or ())
    properties: dict[str, Any] = {}
    required: list[str] = []
    for parameter in operation.get("parameters") or ():
        if parameter.get("in") != "query":
            continue
        properties[parameter["name"]] = parameter.get("schema") or {}
        if parameter.get("required"):
            required.append(parameter["name"])
    return properties, tuple(required)


def _with_extensions(method: str, path: str, properties: dict[str, Any]) -> dict[str, Any]:
    """The operation's parameters plus `spec_extensions`: newer parameters and newer enum values."""
    for (ext_method, ext_path, dotted), (schema, _reason) in NEWER_PARAMETERS.items():
        if (ext_method, ext_path) == (method, path):
            parent, leaf = _parent(properties, dotted)
            parent[leaf] = schema
    for (ext_method, ext_path, dotted), (values, _reason) in NEWER_ENUM_VALUES.items():
        if (ext_method, ext_path) == (method, path):
            parent, leaf = _parent(properties, dotted)
            node = parent[leaf] = _copy(parent[leaf])
            if node.get("type") == "array":
                node = node["items"]
            for alternative in [node, *(node.get("anyOf") or ())]:
                if "enum" in alternative and "" not in alternative["enum"]:
                    alternative["enum"] = [*alternative["enum"], *values]
                    break
            else:
                raise KeyError(f"no enum at {method} {path} {dotted}")
    return properties


def _parent(properties: dict[str, Any], dotted: str) -> tuple[dict[str, Any], str]:
    """The (copied) `properties` dict holding the last part of `a.b.c`, and that last part."""
    *parents, leaf = dotted.split(".")
    node = properties
    for part in parents:
        child = node[part] = _copy(node[part])
        node = _object_of(child).setdefault("properties", {})
    return node, leaf


def _copy(schema: dict[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = orjson.loads(orjson.dumps(schema))
    return copied


def _object_of(schema: dict[str, Any]) -> dict[str, Any]:
    if schema.get("type") == "object":
        return schema
    for alternative in schema.get("anyOf") or ():
        if alternative.get("type") == "object":
            found: dict[str, Any] = alternative
            return found
    raise KeyError("a spec extension under a parameter that is not a hash")


@functools.cache
def compile_operations() -> dict[tuple[str, str], Validate]:
    """(METHOD, normalised path) → the request checker of that operation, for every operation."""
    spec = load_spec()
    compiler = _Compiler(spec["components"]["schemas"])
    validators: dict[tuple[str, str], Validate] = {}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method not in ("get", "post", "delete"):
                continue
            properties, required = _parameters(method, operation)
            properties = _with_extensions(method.upper(), path, properties)
            checks = {name: compiler.compile(schema) for name, schema in properties.items()}
            validators[(method.upper(), normalise(path))] = _top_level(checks, required)
    return validators
