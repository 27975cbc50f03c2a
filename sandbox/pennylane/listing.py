"""Pennylane's list conventions: the JSON `filter` parameter and its two kinds of pages."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from sandbox.pennylane.state import ApiError

__all__ = ["cursor_page", "filtered", "numbered_page"]

_OPERATORS = {
    "eq": lambda a, b: a == b,
    "not_eq": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "gt": lambda a, b: a > b,
    "lteq": lambda a, b: a <= b,
    "gteq": lambda a, b: a >= b,
}


def _comparable(item_value: Any, value: Any) -> tuple[Any, Any]:
    if isinstance(item_value, int):
        try:
            return item_value, int(value)
        except (TypeError, ValueError):
            raise ApiError(400, "bad_request", f"filter value {value!r} is not a number") from None
    return str(item_value), str(value)


def filtered(items: list[dict[str, Any]], raw: str | None, fields: set[str]) -> list[dict[str, Any]]:
    """Items matching every `{"field", "operator", "value"}` of `raw` (400 on an unknown field or operator)."""
    if not raw:
        return items
    try:
        rules = json.loads(raw)
    except ValueError:
        raise ApiError(400, "bad_request", "filter must be a JSON array") from None
    if not isinstance(rules, list):
        raise ApiError(400, "bad_request", "filter must be a JSON array")
    for rule in rules:
        if not isinstance(rule, dict) or rule.get("field") not in fields:
            raise ApiError(400, "bad_request", f"filter field must be one of {sorted(fields)}")
        name, operator, value = rule["field"], rule.get("operator"), rule.get("value")
        if operator in ("in", "not_in"):
            values = value if isinstance(value, list) else str(value).split(",")
            keep = operator == "in"
            items = [i for i in items if (str(i[name]) in {str(v) for v in values}) == keep]
        elif operator == "start_with":
            items = [i for i in items if str(i[name]).startswith(str(value))]
        elif operator in _OPERATORS:
            compare = _OPERATORS[operator]
            items = [i for i in items if compare(*_comparable(i[name], value))]
        else:
            raise ApiError(400, "bad_request", f"unknown filter operator {operator!r}")
    return items


def _bounded(params: Mapping[str, str], name: str, default: int, most: int) -> int:
    raw = params.get(name)
    try:
        value = int(raw) if raw is not None else default
    except ValueError:
        raise ApiError(400, "bad_request", f"{name} must be an integer") from None
    if not 1 <= value <= most:
        raise ApiError(400, "bad_request", f"{name} must be between 1 and {most}")
    return value


def cursor_page(items: list[dict[str, Any]], params: Mapping[str, str]) -> dict[str, Any]:
    """`{"items", "has_more", "next_cursor"}` by id, `limit` 1..100 (default 20)."""
    limit = _bounded(params, "limit", 20, 100)
    after = 0
    if params.get("cursor"):
        try:
            after = int(base64.urlsafe_b64decode(params["cursor"]).decode())
        except ValueError:
            raise ApiError(400, "bad_request", "cursor is not valid") from None
    ordered = sorted((i for i in items if i["id"] > after), key=lambda i: i["id"])
    page = ordered[:limit]
    more = len(ordered) > limit
    cursor = base64.urlsafe_b64encode(str(page[-1]["id"]).encode()).decode() if more else None
    return {"items": page, "has_more": more, "next_cursor": cursor}


def numbered_page(items: list[dict[str, Any]], params: Mapping[str, str]) -> dict[str, Any]:
    """`{"total_pages", "current_page", "total_items", "per_page", "items"}`, `per_page` 1..100 (default 20)."""
    per_page = _bounded(params, "per_page", 20, 100)
    page = _bounded(params, "page", 1, 1_000_000)
    ordered = sorted(items, key=lambda i: i["id"])
    total_pages = max(1, -(-len(ordered) // per_page))
    chunk = ordered[(page - 1) * per_page : page * per_page]
    return {
        "total_pages": total_pages,
        "current_page": page,
        "total_items": len(ordered),
        "per_page": per_page,
        "items": chunk,
    }
