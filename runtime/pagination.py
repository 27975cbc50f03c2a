"""Opaque keyset cursors for list RPCs: (created_at, id) of the last row served."""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import orjson
from collect.common.v1 import common_pb2
from google.protobuf.descriptor import Descriptor

from runtime.contract import rules
from runtime.dates import supported_instant
from runtime.errors import FieldError, InvalidArgument

T = TypeVar("T")

_PAGE = common_pb2.PageRequest.DESCRIPTOR


def page_limit(limit: int, page: Descriptor = _PAGE) -> int:
    """The page size a request asks for: its page message's declared default when 0, else within
    the declared bounds (common.proto's PageRequest unless another page message is named)."""
    field_rules = rules(page.fields_by_name["limit"])
    if limit == 0:
        return int(field_rules.default)
    low, high = field_rules.minimum or 1, max_limit(page)
    if not low <= limit <= high:
        raise InvalidArgument(
            f"limit must be {low}..{high}", "invalid_limit", [FieldError("limit", f"must be {low}..{high}")]
        )
    return limit


def max_limit(page: Descriptor = _PAGE) -> int:
    """The largest page a page message declares."""
    high = rules(page.fields_by_name["limit"]).maximum
    assert high is not None, page.full_name
    return high


def encode_cursor(created_at: datetime, row_id: str) -> str:
    raw = orjson.dumps([created_at.isoformat(), row_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_ROW_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def decode_cursor(cursor: str, *, uuid_id: bool = True) -> tuple[datetime, str] | None:
    """The (created_at, id) a cursor names; a cursor not made by `encode_cursor` is refused
    (with `uuid_id`, the rows' ids are UUIDs)."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor.encode("ascii") + b"=" * (-len(cursor) % 4))
        created, row_id = orjson.loads(raw)
        if not isinstance(created, str) or not isinstance(row_id, str) or not _ROW_ID.fullmatch(row_id):
            raise ValueError(cursor)
        if uuid_id:
            uuid.UUID(row_id)
        moment = datetime.fromisoformat(created)
        if moment.tzinfo is None:
            raise ValueError(cursor)
        return supported_instant(moment, "cursor"), row_id
    except (ValueError, TypeError, InvalidArgument, orjson.JSONDecodeError):
        raise InvalidArgument("cursor is invalid", "invalid_cursor", [FieldError("cursor", "invalid")]) from None


def _created_and_id(row: Any) -> tuple[datetime, str]:
    return row.created_at, str(row.id)


def next_page(
    found: Sequence[T], size: int, key: Callable[[T], tuple[datetime, str]] = _created_and_id
) -> tuple[list[T], str]:
    """The page out of `size + 1` rows read, and the cursor of its last row when more follow."""
    page = list(found[:size])
    return page, encode_cursor(*key(page[-1])) if len(found) > size else ""
