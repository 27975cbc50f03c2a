"""Validation of the JSON fields the sandbox controls accept; errors are Qonto-style 422s."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sandbox.qonto.clock import parse_time
from sandbox.qonto.models import SandboxError

__all__ = ["cents", "choice", "number", "opt_str", "str_list", "when"]


def opt_str(fields: Mapping[str, Any], name: str) -> str | None:
    """A string, or ``None`` when absent or empty."""
    value = fields.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise SandboxError(422, "invalid_parameter", f"{name} must be a string", name)
    return value


def choice(fields: Mapping[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    """One of ``allowed``; ``default`` when absent."""
    value = opt_str(fields, name) or default
    if value not in allowed:
        raise SandboxError(422, "invalid_parameter", f"{name} must be one of {', '.join(allowed)}", name)
    return value


def cents(fields: Mapping[str, Any], name: str, *, required: bool = False) -> int | None:
    """An integer amount of cents."""
    value = fields.get(name)
    if value is None:
        if required:
            raise SandboxError(422, "invalid_parameter", f"{name} is required", name)
        return None
    # Money is whole cents: refuse floats (and bools, which are ints to Python).
    if isinstance(value, bool) or not isinstance(value, int):
        raise SandboxError(422, "invalid_parameter", f"{name} must be an integer number of cents", name)
    return value


def number(fields: Mapping[str, Any], name: str) -> float | None:
    """A number (int or float), for rates such as ``vat_rate``."""
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SandboxError(422, "invalid_parameter", f"{name} must be a number", name)
    return float(value)


def when(fields: Mapping[str, Any], name: str) -> datetime | None:
    """A moment from ISO 8601 text or Unix seconds, truncated to milliseconds."""
    value = fields.get(name)
    if value is None or value == "":
        return None
    try:
        # Unix seconds are accepted too: Stripe payouts carry arrival_date that way.
        if isinstance(value, int | float) and not isinstance(value, bool):
            moment = datetime.fromtimestamp(value, UTC)
            return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
        if isinstance(value, str):
            moment = parse_time(value)
            return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    except (ValueError, OverflowError, OSError):
        pass
    raise SandboxError(422, "invalid_parameter", f"{name} must be an ISO 8601 date-time", name)


def str_list(fields: Mapping[str, Any], name: str) -> list[str]:
    """A list of strings; empty when absent."""
    value = fields.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise SandboxError(422, "invalid_parameter", f"{name} must be a list of strings", name)
    return list(value)
