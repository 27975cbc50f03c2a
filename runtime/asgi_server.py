"""Serving an ASGI app with uvicorn inside an existing event loop (sandboxes, tests, benches), and
uvicorn's own answers to requests it cannot parse in the app's error shape (`http_protocol_for`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import h11
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import DEFAULT_MAX_INCOMPLETE_EVENT_SIZE, H11Protocol

__all__ = ["MALFORMED_REQUEST_KEY", "EmbeddedServer", "MalformedRequestAnswer", "http_protocol_for", "serve_asgi"]

# What an app answers to a request uvicorn cannot parse (a bad request line or header, a head too
# long): given uvicorn's message, the content type and body of the 400. An app declares it once as
# `app.state.malformed_request`; without it uvicorn's plain-text answer stays.
MalformedRequestAnswer = Callable[[str], tuple[str, bytes]]
MALFORMED_REQUEST_KEY = "malformed_request"
# The request line and headers together, at most (h11's own bound; httptools has none).
MAX_REQUEST_HEAD_BYTES = 16 * 1024
_HEAD_TOO_LONG = "Request line and headers too long."


def _answer_400(answer: MalformedRequestAnswer, message: str, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    content_type, body = answer(message)
    head = [b"HTTP/1.1 400 Bad Request\r\n"]
    head.extend(name + b": " + value + b"\r\n" for name, value in default_headers)
    head.append(b"content-type: " + content_type.encode("latin-1") + b"\r\n")
    head.append(b"content-length: " + str(len(body)).encode("ascii") + b"\r\n")
    head.append(b"connection: close\r\n\r\n")
    return b"".join(head) + body


def http_protocol_for(app: Any, http: str = "auto") -> type[asyncio.Protocol] | str:
    """The uvicorn HTTP protocol to serve `app` with: `http` (auto, httptools or h11) answering the
    requests it cannot parse with the app's `malformed_request` instead of plain text."""
    state = getattr(app, "state", None)
    answer: MalformedRequestAnswer | None = getattr(state, MALFORMED_REQUEST_KEY, None) if state else None
    if answer is None:
        return http
    if http == "h11":
        return _h11_protocol(answer)
    try:
        return _httptools_protocol(answer)
    except ImportError:  # auto without httptools installed: uvicorn's own fallback
        if http == "httptools":
            raise
        return _h11_protocol(answer)


class _BoundedConnection(h11.Connection):
    """h11 bounds a head still arriving, not one received whole: bound that too."""

    refusal: str | None = None

    def next_event(self) -> Any:
        event = super().next_event()
        if isinstance(event, h11.Request):
            size = len(event.target) + sum(len(name) + len(value) + 4 for name, value in event.headers.raw_items())
            if size > MAX_REQUEST_HEAD_BYTES:
                self.refusal = _HEAD_TOO_LONG
                raise h11.RemoteProtocolError(_HEAD_TOO_LONG)  # uvicorn answers it with its 400
        return event


def _h11_protocol(answer: MalformedRequestAnswer) -> type[asyncio.Protocol]:
    class JsonErrorsH11Protocol(H11Protocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.conn = _BoundedConnection(
                h11.SERVER, self.config.h11_max_incomplete_event_size or DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
            )

        def send_400_response(self, msg: str) -> None:
            message = getattr(self.conn, "refusal", None) or msg
            self.transport.write(_answer_400(answer, message, self.server_state.default_headers))
            self.transport.close()

    return JsonErrorsH11Protocol


def _httptools_protocol(answer: MalformedRequestAnswer) -> type[asyncio.Protocol]:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class JsonErrorsHttpToolsProtocol(HttpToolsProtocol):
        _head_bytes = 0
        _refusal: str | None = None

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._head_bytes = 0

        def on_url(self, url: bytes) -> None:
            self._count(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._count(len(name) + len(value) + 4)
            super().on_header(name, value)

        def _count(self, size: int) -> None:
            # Raising in a parser callback makes httptools fail the request: uvicorn's 400.
            self._head_bytes += size
            if self._head_bytes > MAX_REQUEST_HEAD_BYTES:
                self._refusal = _HEAD_TOO_LONG
                raise ValueError(_HEAD_TOO_LONG)

        def send_400_response(self, msg: str) -> None:
            message = self._refusal or msg
            self.transport.write(_answer_400(answer, message, self.server_state.default_headers))
            self.transport.close()

    return JsonErrorsHttpToolsProtocol


class _QuietServer(uvicorn.Server):
    # The owner of the loop decides about signals: uvicorn's own handlers would replace
    # (and later restore out of order) those of pytest or of another embedded server.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class EmbeddedServer:
    """uvicorn serving ``app`` as a task of the current loop; port 0 picks a free port; ``http``
    is uvicorn's HTTP implementation (auto, httptools or h11)."""

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0, http: str = "auto") -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            http=http_protocol_for(app, http),
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
async def serve_asgi(app: ASGIApp, host: str = "127.0.0.1", http: str = "auto") -> AsyncIterator[str]:
    """Serves `app` on a free port for the duration of the block; yields its base URL."""
    server = EmbeddedServer(app, host=host, http=http)
    await server.start()
    try:
        yield server.url
    finally:
        await server.stop()
