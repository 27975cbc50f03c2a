"""The sandbox's rate limiter and fault queue, as units."""

from __future__ import annotations

import pytest

from sandbox.qonto.limits import FaultInjector, RateLimiter


def test_sliding_windows() -> None:
    limiter = RateLimiter(3, extra_windows=((5, 600.0),))
    assert [limiter.check("a", now=t) for t in (0.0, 1.0, 2.0)] == [None, None, None]
    assert limiter.check("a", now=3.0) == 7  # the first hit leaves the 10 s window at t=10
    assert limiter.check("b", now=3.0) is None  # per client
    assert limiter.check("a", now=10.5) is None
    assert limiter.check("a", now=20.0) is None
    # Five requests counted in the 10-minute window: the next waits for the first to expire.
    assert limiter.check("a", now=30.0) == 570
    limiter.reset()
    assert limiter.check("a", now=30.0) is None


def test_fault_queue() -> None:
    faults = FaultInjector()
    faults.add(429, count=2)
    faults.add(503)
    taken = [faults.take() for _ in range(4)]
    assert [(f.status, f.retry_after) if f else None for f in taken] == [(429, 1), (429, 1), (503, None), None]
    with pytest.raises(ValueError):
        faults.add(404)
    with pytest.raises(ValueError):
        faults.add(500, count=0)
