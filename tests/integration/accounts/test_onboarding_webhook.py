"""Onboarding finished at Stripe shows on the organisation from the signed `account.updated` delivery alone."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio

from gateway.webhooks.registration import register_sandbox_endpoints
from sandbox.stripe.testing import RunningSandbox, run_sandbox
from tests.fixtures.database import PlatformDatabase
from tests.fixtures.organizations import REFRESH_URL, RETURN_URL, organization_body
from tests.fixtures.polling import eventually
from tests.fixtures.stack import Stack, sandbox_env, start_stack

PLACEHOLDER_URL = "http://127.0.0.1:9/webhooks/stripe"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def webhook_stack(
    database: PlatformDatabase, qonto_sandbox: Any, smtp_server: Any
) -> AsyncIterator[tuple[Stack, RunningSandbox]]:
    """A platform whose own Stripe sandbox delivers signed events to its gateway."""
    async with contextlib.AsyncExitStack() as exits:
        sandbox = await exits.enter_async_context(run_sandbox(webhook_retry_base_seconds=0.05, webhook_max_attempts=6))
        client = sandbox.client()
        # The secrets exist only once the endpoints do, and the gateway's URL only once it listens.
        secrets = await register_sandbox_endpoints(client, PLACEHOLDER_URL)
        env = {**sandbox_env(sandbox, qonto_sandbox, smtp_server), "STRIPE_WEBHOOK_SECRETS": ",".join(secrets)}
        stack = await exits.enter_async_context(start_stack(database, env))
        for endpoint in (await client.v1.webhook_endpoints.list_async()).data:
            if endpoint.url == PLACEHOLDER_URL:
                await client.v1.webhook_endpoints.update_async(
                    endpoint.id, params={"url": stack.gateway_url + "/webhooks/stripe"}
                )
        yield stack, sandbox
        await sandbox.wait_for_deliveries(30)


async def test_account_updated_delivery_alone_enables_charges(webhook_stack: tuple[Stack, RunningSandbox]) -> None:
    stack, sandbox = webhook_stack
    admin = await stack.admin_headers()
    http = stack.http
    org = (await http.post("/v1/organizations", headers=admin, json=organization_body())).json()
    account = (await http.post(f"/v1/organizations/{org['id']}/stripe-account", headers=admin, json={})).json()
    link = await http.post(
        f"/v1/organizations/{org['id']}/onboarding-link",
        headers=admin,
        json={"return_url": RETURN_URL, "refresh_url": REFRESH_URL},
    )
    async with httpx.AsyncClient() as browser:
        visit = await browser.get(link.json()["url"], follow_redirects=False)
    assert visit.status_code in (302, 303)
    await sandbox.wait_for_deliveries(30)

    # No refresh: only the delivered event can have told Accounts.
    shown = (await http.get(f"/v1/organizations/{org['id']}", headers=admin)).json()
    assert shown["stripe_account_id"] == account["stripe_account_id"]
    assert shown["charges_enabled"] is True and shown["payouts_enabled"] is True
    assert shown["requirements_due"] == []
    inbox = await stack.deps["accounts"].pool.fetch(
        "SELECT event_id, status FROM inbox_events WHERE type = 'account.updated' AND account = $1",
        account["stripe_account_id"],
    )
    statuses = [row["status"] for row in inbox]
    assert "applied" in statuses and "failed" not in statuses, statuses

    # The audit trail holds the event applied, in the organisation's chain (found from its account).
    async def audited() -> list[dict[str, Any]]:
        answer = await http.get(
            "/v1/audit", headers=admin, params={"organization_id": org["id"], "action": "stripe_event.applied"}
        )
        return [e for e in answer.json()["data"] if e["targets"]["event_type"] == "account.updated"]

    entries = await eventually(audited, "the applied account.updated in the audit trail")
    applied = {row["event_id"] for row in inbox if row["status"] == "applied"}
    assert {e["targets"]["event_id"] for e in entries} == applied
    assert {(e["actor_id"], e["actor_role"]) for e in entries} <= {
        ("service:gateway", "service"),
        ("service:accounts", "service"),
    }
    assert {e["targets"]["stripe_account"] for e in entries} == {account["stripe_account_id"]}
