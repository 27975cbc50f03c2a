"""PostgreSQL LISTEN/NOTIFY within one service: a notification reaches every replica, after commit.

`notify(conn, channel, payload)` inside the transaction that makes a change; a `Listener` keeps
one dedicated connection (pooled ones are never left LISTENing) and calls back on each payload.
While its connection is lost, notifications are missed: `on_reset` is called when it is lost and
again when it is back, so that callers drop what they cached in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import asyncpg

from runtime.db import Connection
from runtime.errors import Unavailable

log = logging.getLogger("runtime.notifications")


async def notify(conn: Connection, channel: str, payload: str) -> None:
    """Queues a notification; PostgreSQL delivers it when the surrounding transaction commits."""
    await conn.execute("SELECT pg_notify($1, $2)", channel, payload)


class Listener:
    """LISTENs to `channel` on its own connection, reconnecting with a backoff."""

    def __init__(
        self,
        dsn: str,
        channel: str,
        on_message: Callable[[str], None],
        on_reset: Callable[[bool], None],
        *,
        retry_seconds: float = 1.0,
    ) -> None:
        self._dsn = dsn
        self._channel = channel
        self._on_message = on_message
        self._on_reset = on_reset  # called with True once listening, False when the connection is lost
        self._retry = retry_seconds
        self._task: asyncio.Task[None] | None = None
        self.listening = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"listen-{self._channel}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _received(self, _conn: Connection, _pid: int, _channel: str, payload: object) -> None:
        self._on_message(str(payload))

    async def _run(self) -> None:
        while True:
            try:
                await self._listen_until_lost()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as error:
                log.warning("listening on %s: %s", self._channel, error)
            await asyncio.sleep(self._retry)

    async def _listen_until_lost(self) -> None:
        conn = await asyncpg.connect(self._dsn, server_settings={"application_name": f"listen:{self._channel}"})
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        try:
            await conn.add_listener(self._channel, self._received)
            self.listening = True
            self._on_reset(True)
            while not lost.is_set():
                # A dead peer is only noticed when something is sent: check now and then.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), timeout=5.0)
                if not lost.is_set():
                    await conn.fetchval("SELECT 1", timeout=5.0)
        finally:
            if self.listening:
                self.listening = False
                self._on_reset(False)
            if not conn.is_closed():
                conn.terminate()


class ChangeFeed:
    """Every NOTIFY on `channel`, for gRPC watch streams (one queue per stream).

    `changes()` yields "" once the stream is following (the listener is up), then each payload;
    it ends when the listener is lost (the watcher must drop what it knows and start again), at
    `end_streams()` (before a server drains), or when a watcher falls `backlog` behind.
    `on_change` / `on_reset` let the owner keep its own caches in step.
    """

    def __init__(
        self,
        dsn: str,
        channel: str,
        *,
        on_change: Callable[[str], None] | None = None,
        on_reset: Callable[[], None] | None = None,
        backlog: int = 1_000,
    ) -> None:
        self._streams: set[asyncio.Queue[str | None]] = set()
        self._listener = Listener(dsn, channel, self._changed, self._reset)
        self._on_change = on_change
        self._on_reset = on_reset
        self._backlog = backlog
        self._closing = False

    def start(self) -> None:
        self._listener.start()

    def end_streams(self) -> None:
        self._closing = True
        for queue in self._streams:
            queue.put_nowait(None)

    async def close(self) -> None:
        self.end_streams()
        await self._listener.close()

    def _changed(self, payload: str) -> None:
        if self._on_change is not None:
            self._on_change(payload)
        for queue in list(self._streams):
            if queue.qsize() >= self._backlog:
                self._streams.discard(queue)
                queue.put_nowait(None)
            else:
                queue.put_nowait(payload)

    def _reset(self, listening: bool) -> None:
        if self._on_reset is not None:
            self._on_reset()
        if not listening:
            for queue in self._streams:
                queue.put_nowait(None)

    async def changes(self) -> AsyncIterator[str]:
        if self._closing or not self._listener.listening:
            raise Unavailable("changes cannot be followed right now", "watch_unavailable")
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._streams.add(queue)
        try:
            yield ""
            while (payload := await queue.get()) is not None:
                yield payload
        finally:
            self._streams.discard(queue)
