"""OpenAPI parts shared by hand-written route modules (their `openapi_paths`); the document itself is
assembled by `gateway.transcoding.schema.openapi_document` (generated operations and these)."""

from __future__ import annotations

from typing import Any

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
