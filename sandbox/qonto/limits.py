"""Qonto's per-IP rate limit, and faults forced on the next requests for client tests."""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass

__all__ = ["FaultInjector", "InjectedFault", "RateLimiter"]

WINDOW_SECONDS = 10.0


class RateLimiter:
    """Sliding windows per client: ``limit`` requests per 10 s, plus any ``extra_windows``.

    Qonto allows 1,000 requests per 10 s and 10,000 per 10 min per IP; a request refused
    by one window is not counted by the others.
    """

    def __init__(
        self,
        limit: int,
        window_seconds: float = WINDOW_SECONDS,
        extra_windows: tuple[tuple[int, float], ...] = (),
    ) -> None:
        self.windows = ((limit, window_seconds), *extra_windows)
        self._hits: dict[str, tuple[deque[float], ...]] = {}

    def check(self, client: str, now: float | None = None) -> int | None:
        """Count a request; ``None`` if allowed, else the seconds to wait (for ``Retry-After``)."""
        current = time.monotonic() if now is None else now
        hits = self._hits.setdefault(client, tuple(deque() for _ in self.windows))
        wait = 0
        for (limit, seconds), window in zip(self.windows, hits, strict=True):
            while window and window[0] <= current - seconds:
                window.popleft()
            if len(window) >= limit:
                wait = max(wait, math.ceil(window[0] + seconds - current), 1)
        if wait:
            return wait
        for window in hits:
            window.append(current)
        return None

    def used(self, client: str, now: float | None = None) -> int:
        """Requests of `client` counted in its first window (for rate limit headers)."""
        current = time.monotonic() if now is None else now
        hits = self._hits.get(client)
        if not hits:
            return 0
        return sum(1 for hit in hits[0] if hit > current - self.windows[0][1])

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
