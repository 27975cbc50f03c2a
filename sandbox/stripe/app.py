"""The Starlette application of the Stripe sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.routing import Route

from . import ops
from .api import Api
from .config import SandboxConfig
from .resources import (
    accounts,
    application_fees,
    balance,
    charges,
    events,
    payment_intents,
    payment_methods,
    payouts,
    refunds,
    terminal,
    transfers,
    webhook_endpoints,
)
from .router import Router
from .state import SandboxState

_RESOURCES = (
    accounts,
    application_fees,
    balance,
    charges,
    events,
    payment_intents,
    payment_methods,
    payouts,
    refunds,
    terminal,
    transfers,
    webhook_endpoints,
)


def create_app(config: SandboxConfig | None = None) -> Starlette:
    """A fresh sandbox app; its state is `app.state.sandbox`, started and stopped by the lifespan."""
    state = SandboxState(config or SandboxConfig.from_env())
    router = Router(route for module in _RESOURCES for route in module.ROUTES)
    api = Api(state, router)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await state.start()
        try:
            yield
        finally:
            await state.stop()

    app = Starlette(
        # The API route first: Starlette tries routes in order and this one takes nearly all traffic.
        routes=[Route("/v1/{rest:path}", api.handle, methods=["GET", "POST", "DELETE"]), *ops.ROUTES],
        lifespan=lifespan,
    )
    app.state.sandbox = state
    return app
