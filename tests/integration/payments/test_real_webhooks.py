"""The whole path with real webhooks: sandbox → signed POST /webhooks/stripe → gateway → Payments' inbox."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from gateway.webhooks.registration import register_sandbox_endpoints
from sandbox.stripe.testing import RunningSandbox, run_sandbox
from tests.fixtures.database import PlatformDatabase
from tests.fixtures.organizations import onboarded_organization
from tests.fixtures.stack import Stack, sandbox_env, start_stack
from tests.integration.payments.conftest import confirm, create_payment, get_payment, key

PLACEHOLDER = "http://127.0.0.1:9/webhooks/stripe"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def wired(database: PlatformDatabase, qonto_sandbox: Any, smtp_server: Any) -> AsyncIterator[Stack]:
    async with contextlib.AsyncExitStack() as exits:
        sandbox: RunningSandbox = await exits.enter_async_context(
            run_sandbox(webhook_retry_base_seconds=0.05, webhook_max_attempts=6)
        )
        client = sandbox.client()
        secrets = await register_sandbox_endpoints(client, PLACEHOLDER)
        env = {**sandbox_env(sandbox, qonto_sandbox, smtp_server), "STRIPE_WEBHOOK_SECRETS": ",".join(secrets)}
        stack = await exits.enter_async_context(start_stack(database, env))
        for endpoint in (await client.v1.webhook_endpoints.list_async()).data:
            if endpoint.url == PLACEHOLDER:
                await client.v1.webhook_endpoints.update_async(
                    endpoint.id, params={"url": stack.gateway_url + "/webhooks/stripe"}
                )
        stack.extras.update(stripe_sandbox=sandbox, qonto_sandbox=qonto_sandbox, smtp_server=smtp_server)
        yield stack
        await sandbox.wait_for_deliveries(30)


async def _until(stack: Stack, headers: dict[str, str], payment_id: str, check: Any) -> dict[str, Any]:
    await stack.extras["stripe_sandbox"].wait_for_deliveries(30)
    for _ in range(100):
        current = await get_payment(stack, headers, payment_id)
        if check(current):
            return current
        await asyncio.sleep(0.05)
    return current


async def test_success_dashboard_refund_and_receipt_arrive_by_webhook(wired: Stack) -> None:
    org = await onboarded_organization(wired, charge_model="destination", fee_percent_bps=200)
    email = f"buyer-{uuid.uuid4().hex[:8]}@example.test"
    payment = await create_payment(wired, org.agent_headers, amount=1000, receipt_email=email)
    await confirm(wired, payment, None)
    done = await _until(wired, org.admin_headers, payment["id"], lambda p: p["status"] == "succeeded")
    assert done["status"] == "succeeded" and done["application_fee_amount"] == 20

    client = wired.extras["stripe_sandbox"].client()
    await client.v1.refunds.create_async(
        params={"payment_intent": payment["stripe_payment_intent_id"], "amount": 250, "reverse_transfer": True}
    )
    refunded = await _until(wired, org.admin_headers, payment["id"], lambda p: p["amount_refunded"] == 250)
    assert refunded["amount_refunded"] == 250 and len(refunded["refunds"]) == 1
    ours = await wired.http.post(
        f"/v1/payments/{payment['id']}/refunds", headers={**org.admin_headers, **key()}, json={"amount": 750}
    )
    assert ours.status_code == 201, ours.text
    final = await _until(wired, org.admin_headers, payment["id"], lambda p: len(p["refunds"]) == 2)
    assert final["amount_refunded"] == 1000 and len(final["refunds"]) == 2

    smtp = wired.extras["smtp_server"]
    for _ in range(100):
        if smtp.to(email):
            break
        await asyncio.sleep(0.05)
    assert len(smtp.to(email)) == 1
    stats = (await wired.http.get(f"/v1/organizations/{org.id}/stats", headers=org.admin_headers)).json()["totals"]
    assert stats["gross"] == 1000 and stats["refunded"] == 1000 and stats["count"] == 1
