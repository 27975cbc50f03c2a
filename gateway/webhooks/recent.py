"""Events this gateway has seen recorded by their owner, so a re-delivery is acknowledged at once.

Only an owner's answer puts an event here, so an event is never acknowledged before it is
durably recorded; the set is bounded and per process (replicas each keep their own), and
anything it does not hold simply goes to the owner, whose inbox is the real dedupe.
"""

from __future__ import annotations

from collections import OrderedDict

DEFAULT_CAPACITY = 100_000


class RecentEvents:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._capacity = capacity
        self._seen: OrderedDict[tuple[str, str], tuple[str, str]] = OrderedDict()

    def get(self, source: str, event_id: str) -> tuple[str, str] | None:
        """(owner, status) of an event recorded earlier, or None."""
        return self._seen.get((source, event_id))

    def add(self, source: str, event_id: str, owner: str, status: str) -> None:
        key = (source, event_id)
        self._seen[key] = (owner, status)
        self._seen.move_to_end(key)
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)

    def __len__(self) -> int:
        return len(self._seen)
