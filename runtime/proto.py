"""Small conversions between protobuf well-known types and Python values."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Protocol

from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.timestamp_pb2 import Timestamp


def to_timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC))
    return stamp


def from_timestamp(stamp: Timestamp | None) -> datetime | None:
    """None for an unset timestamp (seconds and nanos both zero)."""
    if stamp is None or (stamp.seconds == 0 and stamp.nanos == 0):
        return None
    return stamp.ToDatetime(tzinfo=UTC)


class _Enum(Protocol):
    DESCRIPTOR: EnumDescriptor


def enum_value_name(enum: EnumDescriptor, value_name: str) -> str:
    """`PAYOUT_INTERVAL_DAILY` of enum `PayoutInterval` as the API spells it: "daily"."""
    prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", enum.name).upper() + "_"
    return value_name.removeprefix(prefix).lower()


class EnumNames:
    """A proto enum as the HTTP API and Stripe spell it: `PAYOUT_INTERVAL_DAILY` is "daily".

    The closed set is declared once, in the proto; the unspecified value has no name (""). Values
    carry the enum's name as prefix (buf's ENUM_VALUE_PREFIX rule)."""

    def __init__(self, enum: _Enum) -> None:
        self._by_name = {
            enum_value_name(enum.DESCRIPTOR, value.name): value.number
            for value in enum.DESCRIPTOR.values
            if value.number != 0
        }
        self._by_number = {number: name for name, number in self._by_name.items()}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def number(self, name: str) -> int:
        """0 (unspecified) for a name outside the set."""
        return self._by_name.get(name, 0)

    def name(self, number: int) -> str:
        return self._by_number.get(number, "")
