"""Following payment-policy changes for the services that cache policies (Payments).

Every write that changes a policy NOTIFYs `POLICY_CHANNEL` in its transaction (`Organizations.policy_changed`); each Accounts replica
LISTENs, drops its own cached policy and tells its watch streams. A stream starts with a ready
message only while the listener is up, and is ended when the listener is lost, so a watcher
never caches across a gap in which a change could have been missed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from runtime.errors import Unavailable
from runtime.notifications import Listener
from services.accounts.organizations import POLICY_CHANNEL, PolicyCache

_BACKLOG = 1_000  # a watcher this far behind is cut off (it resets and reconnects)


class PolicyWatch:
    def __init__(self, cache: PolicyCache, dsn: str) -> None:
        self._cache = cache
        self._streams: set[asyncio.Queue[str | None]] = set()
        self._listener = Listener(dsn, POLICY_CHANNEL, self._changed, self._reset)
        self._closing = False

    def start(self) -> None:
        self._listener.start()

    def end_streams(self) -> None:
        """Ends every watch stream (before the server drains, so shutdown does not wait on them)."""
        self._closing = True
        for queue in self._streams:
            queue.put_nowait(None)

    async def close(self) -> None:
        self.end_streams()
        await self._listener.close()

    def _changed(self, organization_id: str) -> None:
        self._cache.invalidate(organization_id)
        for queue in list(self._streams):
            if queue.qsize() >= _BACKLOG:
                self._streams.discard(queue)
                queue.put_nowait(None)
            else:
                queue.put_nowait(organization_id)

    def _reset(self, listening: bool) -> None:
        self._cache.clear()
        if not listening:
            for queue in self._streams:
                queue.put_nowait(None)

    async def changes(self) -> AsyncIterator[str]:
        """An empty string first (the stream is live), then the ids of organisations whose policy
        changed; ends when the watcher must drop what it cached and start again."""
        if self._closing or not self._listener.listening:
            raise Unavailable("policy changes cannot be followed right now", "policy_watch_unavailable")
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._streams.add(queue)
        try:
            yield ""
            while (organization_id := await queue.get()) is not None:
                yield organization_id
        finally:
            self._streams.discard(queue)
