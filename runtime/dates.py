"""Days and instants the platform accepts from its callers: one format each, one supported range.

A date outside the range is refused as bad input instead of overflowing later (a day after
9999-12-31 does not exist in Python; PostgreSQL and protobuf Timestamps stop at other bounds).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from runtime.errors import FieldError, InvalidArgument

__all__ = [
    "DAY",
    "EARLIEST_DAY",
    "INSTANT",
    "LATEST_DAY",
    "parse_day",
    "parse_day_or_instant",
    "parse_instant",
    "supported_instant",
]

# The two forms, to the letter (Python's fromisoformat also takes week dates, basic formats and
# commas, which no other reader of the API would): a day, and an RFC 3339 instant with its offset.
DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})")

EARLIEST_DAY = date(1970, 1, 1)
# The last day whose next day exists in every time zone.
LATEST_DAY = date(9998, 12, 31)
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 1, 1, tzinfo=UTC)
_RANGE = f"between {EARLIEST_DAY.isoformat()} and {LATEST_DAY.isoformat()}"


def _invalid(name: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"{name} {message}", "validation_error", [FieldError(name, message)])


def parse_day(value: str, name: str) -> date | None:
    """The day `YYYY-MM-DD` in the supported range; None when empty."""
    if not value:
        return None
    try:
        if not DAY.fullmatch(value) or not value.isascii():
            raise ValueError(value)
        day = date.fromisoformat(value)
    except ValueError:
        raise _invalid(name, "must be a date YYYY-MM-DD") from None
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise _invalid(name, f"must be {_RANGE}")
    return day


def parse_instant(value: str, name: str) -> datetime | None:
    """An RFC 3339 timestamp with its offset, in the supported range, in UTC; None when empty."""
    if not value:
        return None
    try:
        if not INSTANT.fullmatch(value) or not value.isascii():
            raise ValueError(value)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise _invalid(name, "must be an RFC 3339 timestamp") from None
    if moment.tzinfo is None:
        raise _invalid(name, "must carry a time zone (RFC 3339)")
    return supported_instant(moment, name)


def parse_day_or_instant(value: str, name: str) -> date | datetime | None:
    """A bound given either way the API takes dates: a `YYYY-MM-DD` day or an RFC 3339 instant."""
    if DAY.fullmatch(value):
        return parse_day(value, name)
    if not value or INSTANT.fullmatch(value):
        return parse_instant(value, name)
    raise _invalid(name, "must be a date YYYY-MM-DD or an RFC 3339 timestamp")


def supported_instant(moment: datetime, name: str) -> datetime:
    """`moment` in UTC when it lies in the supported range (naive means UTC)."""
    try:
        utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except OverflowError:
        raise _invalid(name, f"must be {_RANGE}") from None
    if not _EARLIEST <= utc < _LATEST:
        raise _invalid(name, f"must be {_RANGE}")
    return utc
