"""Qonto's per-IP rate limit, and faults forced on the next requests for client tests."""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass

__all__ = ["FaultInjector", "InjectedFault", "RateLimiter"]

WINDOW_SECONDS = 10.0


class RateLimiter:
    """Sliding window: at most ``limit`` requests per client in any 10 s."""

    def __init__(self, limit: int, window_seconds: float = WINDOW_SECONDS) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self._hits: dict[str, deque[float]] = {}

    def check(self, client: str, now: float | None = None) -> int | None:
        """Count a request; ``None`` if allowed, else the seconds to wait (for ``Retry-After``)."""
        current = time.monotonic() if now is None else now
        hits = self._hits.setdefault(client, deque())
        while hits and hits[0] <= current - self.window_seconds:
            hits.popleft()
        if len(hits) >= self.limit:
            return max(1, math.ceil(hits[0] + self.window_seconds - current))
        hits.append(current)
        return None

    def reset(self) -> None:
        """Forget every client."""
        self._hits.clear()


@dataclass(frozen=True)
class InjectedFault:
    """What the next faulted request answers."""

    status: int
    retry_after: int | None


class FaultInjector:
    """A queue of forced answers for the next ``/v2`` requests."""

    def __init__(self) -> None:
        self._queue: deque[InjectedFault] = deque()

    def add(self, status: int, count: int = 1, retry_after: int | None = None) -> None:
        """Make the next ``count`` API requests answer ``status``."""
        if status not in (429, 500, 502, 503, 504):
            raise ValueError("faults can be 429, 500, 502, 503 or 504")
        if count < 1:
            raise ValueError("count must be at least 1")
        if status == 429 and retry_after is None:
            retry_after = 1
        self._queue.extend(InjectedFault(status, retry_after) for _ in range(count))

    def take(self) -> InjectedFault | None:
        """The fault for this request, if any is queued."""
        return self._queue.popleft() if self._queue else None

    @property
    def remaining(self) -> int:
        """Faults still queued."""
        return len(self._queue)

    def clear(self) -> None:
        """Drop queued faults."""
        self._queue.clear()
