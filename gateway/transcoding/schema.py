"""OpenAPI operations and JSON schemas written from the same descriptors and rules the routes use."""

from __future__ import annotations

import re
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from gateway.openapi import IDEMPOTENCY_HEADER, PROBLEM, error_responses
from gateway.transcoding.codec import (
    _INT_BOUNDS,
    DEFAULT_MAP_MAX_ITEMS,
    DEFAULT_MAX_ITEMS,
    DEFAULT_MAX_LEN,
    MAP_KEY_MAX_LEN,
    TIMESTAMP,
    Slot,
    json_name,
    map_value_slot,
    slots,
)
from gateway.transcoding.routes import Operation
from runtime.contract import Rules, enum_names, message_type, rules

_T = FieldDescriptor
# Every error an API operation can answer (a service's domain errors and the gateway's own).
ERROR_STATUSES = (400, 401, 403, 404, 409, 429, 502, 503)
_64_BIT = (_T.TYPE_INT64, _T.TYPE_UINT64, _T.TYPE_SINT64, _T.TYPE_FIXED64, _T.TYPE_SFIXED64)


class Components:
    """The named response schemas an operation refers to (one per message type)."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}
        self._names: dict[str, str] = {}

    def ref(self, descriptor: Descriptor) -> dict[str, str]:
        name = self._names.get(descriptor.full_name)
        if name is None:
            name = descriptor.name
            if name in self.schemas:  # the same short name in two packages
                name = descriptor.full_name.replace(".", "_")
            self._names[descriptor.full_name] = name
            self.schemas[name] = {}  # reserved before recursing (recursive types)
            self.schemas[name] = self.output_object(descriptor)
        return {"$ref": f"#/components/schemas/{name}"}

    def output_object(self, descriptor: Descriptor) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        required: list[str] = []
        for proto_field in descriptor.fields:
            field_rules = rules(proto_field)
            if field_rules.header or field_rules.server_only:
                continue  # output_only fields are answered
            if field_rules.inline and proto_field.message_type is not None:
                inner = self.output_object(proto_field.message_type)
                properties.update(inner["properties"])
                required.extend(inner.get("required", []))
                continue
            name = json_name(proto_field)
            properties[name] = self.output_field(proto_field, field_rules)
            if not field_rules.omit_empty:
                required.append(name)
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        return schema

    def output_field(self, proto_field: FieldDescriptor, field_rules: Rules) -> dict[str, Any]:
        kind = proto_field.message_type
        if kind is not None and kind.GetOptions().map_entry:
            value = kind.fields_by_name["value"]
            return {"type": "object", "additionalProperties": self.output_field(value, rules(value))}
        nullable = field_rules.nullable
        if field_rules.json:
            return _described({"description": "a JSON value, null when none"}, proto_field, field_rules)
        if proto_field.enum_type is not None:
            item: dict[str, Any] = {"type": "string", "enum": [*enum_names(proto_field.enum_type), ""]}
        elif kind is not None and kind.full_name == TIMESTAMP:
            item, nullable = {"type": "string", "format": "date-time"}, True
        elif kind is not None:
            item = self.ref(kind)
        else:
            item = _scalar_type(proto_field)
            if field_rules.choices:
                item["enum"] = list(field_rules.choices)
        if proto_field.is_repeated:
            return {"type": "array", "items": item}
        if proto_field.has_presence and kind is None and proto_field.containing_oneof is not None:
            nullable = True  # proto3 optional
        if nullable:
            if "$ref" in item:
                return {"oneOf": [item, {"type": "null"}]}
            item["type"] = [item["type"], "null"]
            if "enum" in item:
                item["enum"] = [*item["enum"], None]
        return _described(item, proto_field, field_rules)


def _scalar_type(proto_field: FieldDescriptor) -> dict[str, Any]:
    kind = proto_field.type
    if kind == _T.TYPE_BOOL:
        return {"type": "boolean"}
    if kind in (_T.TYPE_DOUBLE, _T.TYPE_FLOAT):
        return {"type": "number"}
    if kind in _INT_BOUNDS:
        return {"type": "integer", "format": "int64" if kind in _64_BIT else "int32"}
    return {"type": "string"}


def _described(schema: dict[str, Any], proto_field: FieldDescriptor, field_rules: Rules) -> dict[str, Any]:
    if field_rules.hint:
        schema["description"] = field_rules.hint
    if field_rules.example:
        schema["examples"] = [int(field_rules.example) if schema.get("type") == "integer" else field_rules.example]
    return schema


def input_object(descriptor: Descriptor, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The schema of a request body (or of a nested object in it)."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for slot in slots(descriptor):
        if slot.json in skip:
            continue
        properties[slot.json] = input_field(slot)
        if slot.rules.required:
            required.append(slot.json)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def input_field(slot: Slot) -> dict[str, Any]:
    """A field as a request may send it, with every bound the gateway checks."""
    if slot.is_map:
        limit = slot.rules.max_items or DEFAULT_MAP_MAX_ITEMS
        value = map_value_slot(slot.field)
        return {
            "type": "object",
            "maxProperties": limit,
            "propertyNames": {"maxLength": MAP_KEY_MAX_LEN},
            "additionalProperties": _input_scalar(value),
        }
    item = input_object(slot.message) if slot.message is not None else _input_scalar(slot)
    if slot.rules.nullable and not slot.repeated and "type" in item:
        item = {**item, "type": [item["type"], "null"]}  # null reads as absent, as it is answered
        if "enum" in item:
            item["enum"] = [*item["enum"], None]
    if slot.repeated:
        if slot.rules.lenient:
            # Any item is taken; the service accepts or rejects each one alone, with its reason.
            item = {"description": f"each: {', '.join(sorted(item.get('properties', {})))}"}
        return {"type": "array", "maxItems": slot.rules.max_items or DEFAULT_MAX_ITEMS, "items": item}
    return item


def _input_scalar(slot: Slot) -> dict[str, Any]:
    schema = _input_type(slot)
    default = slot.rules.default
    if default:
        kind = schema.get("type")
        schema["default"] = default == "true" if kind == "boolean" else int(default) if kind == "integer" else default
    return schema


def _input_type(slot: Slot) -> dict[str, Any]:
    proto_field, field_rules = slot.field, slot.rules
    if proto_field.message_type is not None:  # Timestamp
        return {"type": "string", "format": "date-time", "maxLength": field_rules.max_len or DEFAULT_MAX_LEN}
    schema = _scalar_type(proto_field)
    if proto_field.enum_type is not None or slot.choices:
        schema = {"type": "string", "enum": list(slot.choices)}
    elif schema["type"] == "string":
        schema["maxLength"] = field_rules.max_len or DEFAULT_MAX_LEN
        if field_rules.min_len:
            schema["minLength"] = field_rules.min_len
        if field_rules.pattern is not None and field_rules.format != "email":
            # (An e-mail is described by its format alone: fuzzers read our pattern as stricter than it is.)
            schema["pattern"] = f"^(?:{field_rules.pattern.pattern})$"
        if field_rules.format in ("date", "email"):
            schema["format"] = field_rules.format
    elif schema["type"] == "integer":
        low, high = _INT_BOUNDS[proto_field.type]
        schema["minimum"] = low if field_rules.minimum is None else max(low, field_rules.minimum)
        schema["maximum"] = high if field_rules.maximum is None else min(high, field_rules.maximum)
    return _described(schema, proto_field, field_rules)


def _slot(descriptor: Descriptor, path: str) -> Slot:
    """The slot a (dotted) field path names."""
    head, _, rest = path.partition(".")
    if rest:
        return _slot(message_type(descriptor.fields_by_name[head]), rest)
    return next(slot for slot in slots(descriptor) if slot.name == head)


def query_parameters(request: Descriptor, skip: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """A request message's fields as query parameters (also for hand-written routes that read it:
    the FEC downloads)."""
    return [
        {
            "name": slot.json,
            "in": "query",
            "schema": input_field(slot),
            **({"required": True} if slot.rules.required else {}),
        }
        for slot in slots(request)
        if slot.json not in skip
    ]


def operation_object(operation: Operation, components: Components) -> dict[str, Any]:
    method = operation.method
    route = operation.route
    request = method.input_type
    path_params = frozenset(operation.path_params)
    tag = route.tag or re.sub(r"Service$", "", method.containing_service.name).lower()
    roles = "any member" if not route.min_role else f"{route.min_role} and above"
    document: dict[str, Any] = {
        # An RPC's additional bindings (another path) are numbered: listPayouts, listPayouts2.
        "operationId": method.name[:1].lower()
        + method.name[1:]
        + (str(operation.binding + 1) if operation.binding else ""),
        "tags": [tag],
        "summary": route.summary or method.name,
        "description": f"Served by `{method.full_name}`; {'public' if route.public else roles}.",
    }
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": _input_scalar(_slot(request, field))}
        for name, field in zip(operation.path_params, operation.path_fields, strict=True)
    ]
    if route.idempotency_key:
        parameters.append(IDEMPOTENCY_HEADER)
    if not operation.body:
        parameters.extend(query_parameters(request, path_params))
    if parameters:
        document["parameters"] = parameters
    if operation.body:
        body = (
            input_object(request, path_params)
            if operation.body == "*"
            else input_object(message_type(request.fields_by_name[operation.body]), path_params)
        )
        # An empty body is every field absent: it may be left out when no field is required.
        document["requestBody"] = {
            "required": bool(body.get("required")),
            "content": {"application/json": {"schema": body}},
        }
    answer = method.output_type
    if operation.response_body:
        answer = message_type(answer.fields_by_name[operation.response_body])
    headers = {
        header: {"schema": {"type": "string", "enum": ["true"]}, "description": f"when {f.name}"}
        for f in method.output_type.fields
        if (header := rules(f).header)
    }
    success: dict[str, Any] = {"description": "OK", "content": {"application/json": {"schema": components.ref(answer)}}}
    for media_type in route.media_types:
        success["content"][media_type] = {"schema": {"type": "string"}}
    if operation.status == 204:
        success = {"description": "Done (no content)"}
    if headers:
        success["headers"] = headers
    # Another success (202 when `accepted_when`) answers the same schema.
    successes = {str(code): success for code in sorted({operation.status, *route.extra_statuses}) if code < 300}
    if route.accepted_when:
        successes["202"] = {**success, "description": f"Accepted: recorded, finished later ({route.accepted_when})"}
    statuses = [*ERROR_STATUSES, *(413,) * bool(operation.body), *(c for c in route.extra_statuses if c >= 300)]
    document["responses"] = {**successes, **error_responses(*sorted(set(statuses)))}
    if route.public:
        document["security"] = []
    return document


def openapi_document(modules: Iterable[ModuleType]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the route modules: their generated `operations` and the
    `openapi_paths` of hand-written routes."""
    components = Components()
    paths: dict[str, Any] = {}
    for module in modules:
        for operation in getattr(module, "operations", ()):
            paths.setdefault(operation.path, {})[operation.verb] = operation_object(operation, components)
        for path, operations in getattr(module, "openapi_paths", {}).items():
            paths.setdefault(path, {}).update(operations)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Collect platform gateway", "version": "1.0.0"},
        "paths": paths,
        "security": [{"bearer": []}],
        "components": {
            "schemas": {"Problem": PROBLEM, **components.schemas},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
