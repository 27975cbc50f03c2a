"""Refunds whose outcome is unknown are settled by the sweeper from what Stripe has, not by a retry."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.fixtures.database import PlatformDatabase
from tests.fixtures.organizations import OrgContext, onboarded_organization
from tests.fixtures.polling import eventually
from tests.fixtures.stack import Stack, stack_with
from tests.integration.payments.conftest import confirm, crash_after_stripe, create_payment, get_payment, key, settle


@pytest.fixture(scope="module")
async def sweeping(
    database: PlatformDatabase, stripe_sandbox: Any, qonto_sandbox: Any, smtp_server: Any
) -> AsyncIterator[Stack]:
    settings = {"REFUND_SWEEP_AFTER_SECONDS": "1", "REFUND_SWEEP_EVERY_SECONDS": "0.2"}
    async with stack_with(database, stripe_sandbox, qonto_sandbox, smtp_server, settings) as running:
        yield running


async def _paid(stack: Stack) -> tuple[OrgContext, dict[str, Any]]:
    org = await onboarded_organization(stack, fee_percent_bps=1000)
    payment = await create_payment(stack, org.agent_headers, amount=1000)
    await confirm(stack, payment, org.stripe_account_id)
    assert (await settle(stack, org, payment, org.stripe_account_id))["status"] == "succeeded"
    return org, payment


async def _settled_refund(stack: Stack, org: OrgContext, payment: dict[str, Any]) -> dict[str, Any]:
    async def settled() -> dict[str, Any] | None:
        refunds = (await get_payment(stack, org.admin_headers, payment["id"]))["refunds"]
        return refunds[0] if refunds and refunds[0]["status"] != "pending" else None

    found: dict[str, Any] = await eventually(settled, "the pending refund settled by the sweeper")
    return found


async def test_a_refund_stripe_never_received_is_released(sweeping: Stack) -> None:
    org, payment = await _paid(sweeping)
    refunds_url = f"/v1/payments/{payment['id']}/refunds"
    async with httpx.AsyncClient() as http:  # every attempt of the SDK fails: the outcome is unknown to us
        await http.post(f"{sweeping.extras['stripe_sandbox'].url}/_sandbox/fail", json={"fail_next": 3, "status": 503})
    headers = {**org.admin_headers, "Idempotency-Key": uuid.uuid4().hex}
    lost = await sweeping.http.post(refunds_url, headers=headers, json={"amount": 300})
    assert lost.status_code == 503, lost.text
    refund = await _settled_refund(sweeping, org, payment)
    assert refund["status"] == "failed" and "released" in refund["failure_reason"]
    whole = await sweeping.http.post(refunds_url, headers={**org.admin_headers, **key()}, json={})
    assert whole.status_code == 201 and whole.json()["amount"] == 1000, whole.text  # nothing stays reserved
    again = await sweeping.http.post(refunds_url, headers=headers, json={"amount": 300})
    assert again.status_code == 201 and again.json()["status"] == "failed"  # the retry learns the outcome


async def test_a_refund_stripe_made_before_the_crash_is_completed(sweeping: Stack) -> None:
    org, payment = await _paid(sweeping)
    with crash_after_stripe(sweeping, "create_refund"):
        broken = await sweeping.http.post(
            f"/v1/payments/{payment['id']}/refunds", headers={**org.admin_headers, **key()}, json={"amount": 300}
        )
    assert broken.status_code >= 500
    refund = await _settled_refund(sweeping, org, payment)
    assert refund["status"] == "succeeded" and refund["stripe_refund_id"] and refund["application_fee_refunded"] == 30
    final = await get_payment(sweeping, org.admin_headers, payment["id"])
    assert final["amount_refunded"] == 300
    stats = (await sweeping.http.get(f"/v1/organizations/{org.id}/stats", headers=org.admin_headers)).json()
    assert (stats["totals"]["refunded"], stats["totals"]["fees"]) == (300, 70)
