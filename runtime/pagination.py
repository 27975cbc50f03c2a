"""Opaque keyset cursors for list RPCs: (created_at, id) of the last row served."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import orjson

from runtime.errors import FieldError, InvalidArgument

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def page_limit(limit: int) -> int:
    if limit == 0:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgument("limit must be 1..100", "invalid_limit", [FieldError("limit", "must be 1..100")])
    return limit


def encode_cursor(created_at: datetime, row_id: str) -> str:
    raw = orjson.dumps([created_at.isoformat(), row_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, row_id = orjson.loads(raw)
        return datetime.fromisoformat(created), str(row_id)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise InvalidArgument("cursor is invalid", "invalid_cursor", [FieldError("cursor", "invalid")]) from None


def _created_and_id(row: Any) -> tuple[datetime, str]:
    return row.created_at, str(row.id)


def next_page(
    found: Sequence[T], size: int, key: Callable[[T], tuple[datetime, str]] = _created_and_id
) -> tuple[list[T], str]:
    """The page out of `size + 1` rows read, and the cursor of its last row when more follow."""
    page = list(found[:size])
    return page, encode_cursor(*key(page[-1])) if len(found) > size else ""
