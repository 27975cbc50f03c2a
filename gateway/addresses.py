"""Postal addresses at the HTTP edge: one request shape, one JSON shape, one OpenAPI schema."""

from __future__ import annotations

from typing import Any

from collect.common.v1 import common_pb2

from gateway.http import Fields

ADDRESS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["line1", "city", "postal_code"],
    "properties": {
        "line1": {"type": "string"},
        "line2": {"type": "string"},
        "city": {"type": "string"},
        "postal_code": {"type": "string"},
        "country": {"type": "string", "description": "ISO 3166-1 alpha-2; default: the organisation's"},
        "state": {"type": "string"},
    },
}


def address_field(fields: Fields, name: str = "address") -> common_pb2.Address:
    """The address object of a body; its field errors are collected with the body's."""
    address = fields.obj(name)
    return common_pb2.Address(
        line1=address.text("line1", max_len=200),
        line2=address.text("line2", required=False, max_len=200),
        city=address.text("city", max_len=100),
        postal_code=address.text("postal_code", max_len=20),
        country=address.text("country", required=False, max_len=2, pattern=r"[A-Za-z]{2}").upper(),
        state=address.text("state", required=False, max_len=100),
    )


def address_json(address: common_pb2.Address, default_country: str = "") -> dict[str, Any]:
    return {
        "line1": address.line1,
        "line2": address.line2 or None,
        "city": address.city,
        "postal_code": address.postal_code,
        "country": address.country or default_country,
        "state": address.state or None,
    }
