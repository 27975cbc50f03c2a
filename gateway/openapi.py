"""The OpenAPI 3 document, assembled from the `openapi_paths` of each route module."""

from __future__ import annotations

import functools
from typing import Any

from runtime.pagination import MAX_LIMIT

PROBLEM = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "code", "request_id"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "stable, snake_case"},
        "request_id": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {"type": "object", "properties": {"field": {"type": "string"}, "message": {"type": "string"}}},
        },
    },
}


# `?limit&cursor` of every list (runtime.pagination's bounds).
PAGE_PARAMETERS: list[dict[str, Any]] = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}},
    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
]

IDEMPOTENCY_HEADER = {"name": "Idempotency-Key", "in": "header", "required": True, "schema": {"type": "string"}}


def body_schema(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def json_ok(description: str, status: int = 200) -> dict[str, Any]:
    return {str(status): {"description": description, "content": {"application/json": {"schema": {"type": "object"}}}}}


def error_responses(*statuses: int) -> dict[str, Any]:
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    return {str(status): {"description": "problem", "content": problem} for status in statuses}


@functools.cache
def openapi_document() -> dict[str, Any]:
    from gateway.app import ROUTE_MODULES

    paths: dict[str, Any] = {}
    for module in ROUTE_MODULES:
        for path, operations in module.openapi_paths.items():
            paths.setdefault(path, {}).update(operations)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Collect platform gateway", "version": "1.0.0"},
        "paths": paths,
        "security": [{"bearer": []}],
        "components": {
            "schemas": {"Problem": PROBLEM},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
