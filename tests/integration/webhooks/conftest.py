"""A platform of its own for the webhook tests, with its own Stripe and Qonto sandboxes.

The sandboxes deliver signed events to this stack's gateway; their settings (duplicates,
shuffle, retries) and endpoints are changed freely here without touching the session ones.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import grpc
import pytest_asyncio

from gateway.webhooks.registration import register_qonto_endpoint, register_sandbox_endpoints
from runtime import inbox
from runtime.db import Connection
from sandbox.qonto.testing import RunningQontoSandbox, run_qonto_sandbox
from sandbox.stripe.testing import RunningSandbox, run_sandbox
from tests.fixtures.database import PlatformDatabase
from tests.fixtures.stack import START_ORDER, Stack, sandbox_env, start_stack

PREVIOUS_STRIPE_SECRET = "whsec_previous_secret_still_valid_during_rotation"
QONTO_SECRET = "qonto-webhook-secret-for-tests"
PLACEHOLDER_URL = "http://127.0.0.1:9/webhooks/stripe"


@dataclass
class WebhookPlatform:
    stack: Stack
    stripe: RunningSandbox
    qonto: RunningQontoSandbox
    stripe_secrets: list[str]  # platform, Connect
    qonto_secret: str

    @property
    def stripe_url(self) -> str:
        return self.stack.gateway_url + "/webhooks/stripe"

    @property
    def qonto_url(self) -> str:
        return self.stack.gateway_url + "/webhooks/qonto"

    def pool(self, service: str) -> asyncpg.Pool:
        return self.stack.deps[service].pool

    async def inbox_rows(self, service: str, event_id: str) -> list[asyncpg.Record]:
        return list(await self.pool(service).fetch("SELECT * FROM inbox_events WHERE event_id = $1", event_id))

    async def owners_of(self, event_id: str) -> dict[str, list[asyncpg.Record]]:
        found = {name: await self.inbox_rows(name, event_id) for name in START_ORDER}
        return {name: rows for name, rows in found.items() if rows}

    async def configure_stripe(self, **values: Any) -> None:
        import httpx

        async with httpx.AsyncClient() as http:
            answer = await http.post(f"{self.stripe.url}/_sandbox/config", json=values)
            answer.raise_for_status()


async def _ignore(conn: Connection, event: inbox.InboundEvent) -> str:
    return inbox.IGNORED


@contextlib.contextmanager
def event_sinks_everywhere() -> Iterator[None]:
    """Services whose engineers have not registered their sink yet get one that records and ignores.

    The routing contract (recorded by the right owner, acknowledged) holds for every type,
    handled or not, so the tests do not wait for the handlers.
    """
    modules = [importlib.import_module(f"services.{name}.main") for name in START_ORDER]
    originals = {module: module.wire for module in modules}

    def wrap(original: Any) -> Any:
        def wire(deps: Any, server: grpc.aio.Server) -> Iterable[str]:
            names = list(original(deps, server))
            if inbox.SERVICE_NAME not in names:
                names.append(inbox.register_event_sink(deps, server, _ignore))
            return names

        return wire

    for module, original in originals.items():
        module.wire = wrap(original)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for module, original in originals.items():
            module.wire = original  # type: ignore[attr-defined]


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def platform(database: PlatformDatabase, smtp_server: Any) -> AsyncIterator[WebhookPlatform]:
    async with contextlib.AsyncExitStack() as exits:
        stripe_sandbox = await exits.enter_async_context(
            run_sandbox(webhook_retry_base_seconds=0.05, webhook_max_attempts=6)
        )
        qonto_sandbox = await exits.enter_async_context(
            run_qonto_sandbox(webhook_retry_base_seconds=0.05, webhook_max_attempts=6)
        )
        # Stripe shows the secrets only when it creates the endpoints, and the gateway's port is
        # known only once it listens: create them first, then point them at the gateway.
        client = stripe_sandbox.client()
        secrets = await register_sandbox_endpoints(client, PLACEHOLDER_URL)
        env = {
            **sandbox_env(stripe_sandbox, qonto_sandbox, smtp_server),
            "STRIPE_WEBHOOK_SECRETS": ",".join([*secrets, PREVIOUS_STRIPE_SECRET]),
            "QONTO_WEBHOOK_SECRETS": QONTO_SECRET,
        }
        with event_sinks_everywhere():
            stack = await exits.enter_async_context(start_stack(database, env))
        for endpoint in (await client.v1.webhook_endpoints.list_async()).data:
            if endpoint.url == PLACEHOLDER_URL:
                await client.v1.webhook_endpoints.update_async(
                    endpoint.id, params={"url": stack.gateway_url + "/webhooks/stripe"}
                )
        qonto_secret = await register_qonto_endpoint(
            qonto_sandbox.url,
            qonto_sandbox.login,
            qonto_sandbox.secret_key,
            stack.gateway_url,
            webhook_secret=QONTO_SECRET,
        )
        yield WebhookPlatform(stack, stripe_sandbox, qonto_sandbox, secrets, qonto_secret)
        await stripe_sandbox.wait_for_deliveries(30)
        await qonto_sandbox.wait_for_deliveries()
