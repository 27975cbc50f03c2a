"""Fixtures for the Stripe sandbox tests: onboarded connected accounts and a webhook receiver."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from runtime.asgi_server import serve_asgi
from sandbox.stripe.testing import ConnectedAccount, RunningSandbox


@pytest_asyncio.fixture(loop_scope="session")
async def connected(stripe_sandbox: RunningSandbox) -> ConnectedAccount:
    """A fresh onboarded express account on the session sandbox."""
    return await stripe_sandbox.create_connected_account()


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """HTTP endpoints `{url}/<name>` recording what they get; answer 500 to the first `fail_first` requests."""

    url: str = ""
    fail_first: int = 0
    requests: list[Delivery] = field(default_factory=list)
    accepted: list[Delivery] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: Request) -> Response:
        delivery = Delivery(request.url.path, dict(request.headers), await request.body())
        self.requests.append(delivery)
        self.arrived.set()
        if len(self.requests) <= self.fail_first:
            return Response("boom", status_code=500)
        self.accepted.append(delivery)
        return Response(status_code=200)


@pytest_asyncio.fixture(loop_scope="session")
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()
    app = Starlette(routes=[Route("/hook/{name}", state.handle, methods=["POST"])])
    async with serve_asgi(app) as url:
        state.url = f"{url}/hook"
        yield state


@pytest_asyncio.fixture(loop_scope="session")
async def receiver_url_and_requests() -> AsyncIterator[tuple[str, list[dict[str, object]]]]:
    """A stand-in for the Qonto sandbox inject endpoint: records JSON bodies (and the auth header)."""
    bodies: list[dict[str, object]] = []

    async def inject(request: Request) -> Response:
        body = await request.json()
        body["_auth"] = request.headers.get("authorization")
        bodies.append(body)
        return Response(status_code=201)

    async with serve_asgi(Starlette(routes=[Route("/inject", inject, methods=["POST"])])) as url:
        yield f"{url}/inject", bodies
