"""Run the Qonto sandbox inside a test's event loop.

Usage::

    async with run_qonto_sandbox(webhook_retry_base_seconds=0.01) as qs:
        txn = await qs.inject(amount_cents=1234, side="credit", label="STRIPE")
        await qs.wait_for_deliveries()
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette

from runtime.asgi_server import EmbeddedServer
from sandbox.qonto.app import create_app
from sandbox.qonto.config import QontoSandboxConfig
from sandbox.qonto.models import WebhookSubscription
from sandbox.qonto.state import SandboxState

__all__ = ["RunningQontoSandbox", "run_qonto_sandbox"]


class RunningQontoSandbox:
    """Handle on a sandbox served on 127.0.0.1; direct calls skip HTTP but still send webhooks."""

    def __init__(self, app: Starlette, url: str) -> None:
        self.app = app
        self.url = url

    @property
    def state(self) -> SandboxState:
        """The live state (``app.state.sandbox``)."""
        state: SandboxState = self.app.state.sandbox
        return state

    @property
    def config(self) -> QontoSandboxConfig:
        """The configuration it runs with."""
        return self.state.config

    @property
    def login(self) -> str:
        """The accepted login."""
        return self.config.login

    @property
    def secret_key(self) -> str:
        """The accepted secret key."""
        return self.config.secret_key

    @property
    def auth_headers(self) -> dict[str, str]:
        """``{"Authorization": "login:secret_key"}``."""
        return {"Authorization": f"{self.login}:{self.secret_key}"}

    async def inject(self, **fields: Any) -> dict[str, Any]:
        """Create a transaction (same fields as ``POST /_sandbox/transactions``); returns its JSON."""
        return self.state.create_transaction(fields).to_api()

    async def update(self, ref: str, **fields: Any) -> dict[str, Any]:
        """Change a transaction (same fields as ``PATCH /_sandbox/transactions/{id}``)."""
        return self.state.update_transaction(ref, fields).to_api()

    async def add_webhook(self, url: str, secret: str | None = None) -> WebhookSubscription:
        """Subscribe ``url`` to transaction events; the result carries the signing secret."""
        return self.state.add_subscription(url, secret)

    def inject_faults(self, status: int, count: int = 1, retry_after: int | None = None) -> None:
        """Make the next ``count`` ``/v2`` requests answer ``status``."""
        self.state.faults.add(status, count, retry_after)

    async def wait_for_deliveries(self) -> None:
        """Wait until every webhook delivery (retries included) is done."""
        await self.state.deliveries_idle()

    def reset(self) -> None:
        """Forget transactions, subscriptions, faults and rate-limit counters."""
        self.state.reset()


@contextlib.asynccontextmanager
async def run_qonto_sandbox(**overrides: Any) -> AsyncIterator[RunningQontoSandbox]:
    """Serve a fresh sandbox (``QontoSandboxConfig(**overrides)``) on a free local port."""
    app = create_app(QontoSandboxConfig(**overrides))
    server = EmbeddedServer(app)
    await server.start()
    try:
        yield RunningQontoSandbox(app, server.url)
    finally:
        await server.stop()
