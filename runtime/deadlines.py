"""The deadline of the RPC being served, so that outgoing calls never outlive it."""

from __future__ import annotations

import contextvars
import time

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("deadline", default=None)


def set_deadline(seconds_remaining: float | None) -> None:
    _deadline.set(None if seconds_remaining is None else time.monotonic() + seconds_remaining)


def remaining(default: float) -> float:
    """Seconds left for an outgoing call: the default, capped by the current deadline."""
    deadline = _deadline.get()
    if deadline is None:
        return default
    return max(0.001, min(default, deadline - time.monotonic()))
