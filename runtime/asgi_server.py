"""Serving an ASGI app with uvicorn inside an existing event loop (sandboxes, tests, benches)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import uvicorn
from starlette.types import ASGIApp

__all__ = ["EmbeddedServer", "serve_asgi"]


class _QuietServer(uvicorn.Server):
    # The owner of the loop decides about signals: uvicorn's own handlers would replace
    # (and later restore out of order) those of pytest or of another embedded server.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class EmbeddedServer:
    """uvicorn serving ``app`` as a task of the current loop; port 0 picks a free port."""

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            log_config=None,  # the process's logging set-up (JSON, runtime/logs.py) applies to uvicorn too
            lifespan="on",
            ws="none",
            timeout_graceful_shutdown=5,
        )
        self._server = _QuietServer(config)
        self._task: asyncio.Task[None] | None = None
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        """``http://host:port`` once started."""
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        """Serve in the background; returns once the socket listens (or raises why not)."""
        self._task = asyncio.get_running_loop().create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                # uvicorn exits via SystemExit when it cannot bind; surface it plainly.
                exc = self._task.exception()
                raise RuntimeError(f"the server did not start on {self.host}:{self.port}") from exc
            await asyncio.sleep(0.01)
        sockets = self._server.servers[0].sockets
        self.port = sockets[0].getsockname()[1]

    def request_stop(self) -> None:
        """Ask the server to stop; :meth:`wait` returns once it has."""
        self._server.should_exit = True

    async def wait(self) -> None:
        """Wait until the server task ends."""
        if self._task is not None:
            await self._task

    async def stop(self) -> None:
        """Stop accepting, finish in-flight requests, run the app's shutdown."""
        self.request_stop()
        await self.wait()


@contextlib.asynccontextmanager
async def serve_asgi(app: ASGIApp, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serves `app` on a free port for the duration of the block; yields its base URL."""
    server = EmbeddedServer(app, host=host)
    await server.start()
    try:
        yield server.url
    finally:
        await server.stop()
