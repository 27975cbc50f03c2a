"""Fixtures for the Qonto sandbox tests: a fresh sandbox per test and a webhook receiver."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from runtime.asgi_server import EmbeddedServer
from sandbox.qonto.testing import RunningQontoSandbox, run_qonto_sandbox


@dataclass
class Delivery:
    """One request the receiver got."""

    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A webhook endpoint that records requests and fails the first ``fail_first`` of them."""

    url: str = ""
    fail_first: int = 0
    requests: list[Delivery] = field(default_factory=list)
    accepted: list[Delivery] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: Request) -> Response:
        delivery = Delivery(dict(request.headers), await request.body())
        self.requests.append(delivery)
        self.arrived.set()
        if len(self.requests) <= self.fail_first:
            return Response("try again", status_code=503)
        self.accepted.append(delivery)
        return Response(status_code=204)


@pytest_asyncio.fixture(loop_scope="session")
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()
    server = EmbeddedServer(Starlette(routes=[Route("/hook", state.handle, methods=["POST"])]))
    await server.start()
    state.url = f"{server.url}/hook"
    try:
        yield state
    finally:
        await server.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def qonto() -> AsyncIterator[RunningQontoSandbox]:
    """A fresh sandbox with fast webhook retries."""
    async with run_qonto_sandbox(webhook_retry_base_seconds=0.02, webhook_max_attempts=4) as sandbox:
        yield sandbox


@pytest_asyncio.fixture(loop_scope="session")
async def http(qonto: RunningQontoSandbox) -> AsyncIterator[httpx.AsyncClient]:
    """An authenticated HTTP client for the sandbox."""
    async with httpx.AsyncClient(base_url=qonto.url, headers=qonto.auth_headers, timeout=10) as client:
        yield client
