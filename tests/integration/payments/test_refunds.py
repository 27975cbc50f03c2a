"""Refunds: partial and full, never above what is left (also concurrent), Connect rules, dashboard refunds."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.fixtures.organizations import OrgContext, onboarded_organization
from tests.fixtures.stack import Stack
from tests.integration.payments.conftest import (
    confirm,
    crash_after_stripe,
    create_payment,
    deliver,
    get_payment,
    key,
    settle,
    stripe_account_for,
    stripe_events,
)


async def paid(stack: Stack, org: OrgContext, charge_model: str = "direct", amount: int = 1000) -> dict[str, Any]:
    payment = await create_payment(stack, org.agent_headers, amount=amount)
    account = stripe_account_for(org, charge_model)
    await confirm(stack, payment, account)
    done = await settle(stack, org, payment, account)
    assert done["status"] == "succeeded"
    return done


def refund_url(payment: dict[str, Any]) -> str:
    return f"/v1/payments/{payment['id']}/refunds"


async def test_several_partial_refunds_then_the_rest(stack: Stack) -> None:
    org = await onboarded_organization(stack, fee_percent_bps=1000)
    payment = await paid(stack, org)
    for amount in (100, 250):
        answer = await stack.http.post(
            refund_url(payment), headers={**org.admin_headers, **key()}, json={"amount": amount}
        )
        assert answer.status_code == 201, answer.text
    rest = await stack.http.post(refund_url(payment), headers={**org.admin_headers, **key()}, json={})
    assert rest.status_code == 201 and rest.json()["amount"] == 650
    assert rest.json()["application_fee_refunded"] == 100 - 10 - 25
    nothing = await stack.http.post(refund_url(payment), headers={**org.admin_headers, **key()}, json={"amount": 1})
    assert nothing.status_code == 409 and nothing.json()["code"] == "refund_exceeds_remaining"
    final = await get_payment(stack, org.admin_headers, payment["id"])
    assert final["amount_refunded"] == 1000 and final["application_fee_refunded"] == 100
    assert [r["amount"] for r in final["refunds"]] == [100, 250, 650]
    fee = await stack.extras["stripe_sandbox"].client().v1.application_fees.list_async(params={"limit": 100})
    mine = [f for f in fee.data if f.account == org.stripe_account_id]
    assert mine and mine[0].amount_refunded == 100
    stats = (await stack.http.get(f"/v1/organizations/{org.id}/stats", headers=org.admin_headers)).json()["totals"]
    assert stats == {**stats, "gross": 1000, "refunded": 1000, "fees": 0, "net": 0}


async def test_concurrent_refunds_never_exceed_what_is_left(stack: Stack, org: OrgContext) -> None:
    payment = await paid(stack, org)
    answers = await asyncio.gather(
        *(
            stack.http.post(refund_url(payment), headers={**org.admin_headers, **key()}, json={"amount": 300})
            for _ in range(6)
        )
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201, 201, 201, 409, 409, 409], [a.text for a in answers]
    final = await get_payment(stack, org.admin_headers, payment["id"])
    assert final["amount_refunded"] == 900


async def test_refund_replay_and_key_reuse(stack: Stack, org: OrgContext) -> None:
    payment = await paid(stack, org)
    headers = {**org.admin_headers, "Idempotency-Key": uuid.uuid4().hex}
    first = await stack.http.post(refund_url(payment), headers=headers, json={"amount": 100})
    again = await stack.http.post(refund_url(payment), headers=headers, json={"amount": 100})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and again.headers["idempotent-replayed"] == "true"
    other = await stack.http.post(refund_url(payment), headers=headers, json={"amount": 200})
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"
    missing = await stack.http.post(refund_url(payment), headers=org.admin_headers, json={"amount": 100})
    assert missing.status_code == 400
    assert (await get_payment(stack, org.admin_headers, payment["id"]))["amount_refunded"] == 100


async def test_agents_cannot_refund_and_unpaid_payments_cannot_be_refunded(stack: Stack, org: OrgContext) -> None:
    payment = await create_payment(stack, org.agent_headers, amount=1000)
    agent = await stack.http.post(refund_url(payment), headers={**org.agent_headers, **key()}, json={})
    assert agent.status_code == 403
    unpaid = await stack.http.post(refund_url(payment), headers={**org.admin_headers, **key()}, json={})
    assert unpaid.status_code == 409 and unpaid.json()["code"] == "payment_not_refundable"


async def test_destination_refund_reverses_the_transfer_and_refunds_the_fee(stack: Stack) -> None:
    org = await onboarded_organization(stack, charge_model="destination", fee_percent_bps=1000)
    payment = await paid(stack, org, "destination")
    answer = await stack.http.post(refund_url(payment), headers={**org.admin_headers, **key()}, json={"amount": 500})
    assert answer.status_code == 201, answer.text
    assert answer.json()["application_fee_refunded"] == 50
    refund = await stack.extras["stripe_sandbox"].client().v1.refunds.retrieve_async(answer.json()["stripe_refund_id"])
    assert refund.transfer_reversal is not None


async def test_refund_made_in_the_dashboard_is_recorded_from_charge_refunded(stack: Stack, org: OrgContext) -> None:
    payment = await paid(stack, org)
    client = stack.extras["stripe_sandbox"].client()
    await client.v1.refunds.create_async(
        params={"payment_intent": payment["stripe_payment_intent_id"], "amount": 300},
        options={"stripe_account": org.stripe_account_id},
    )
    events = await stripe_events(stack, payment["stripe_payment_intent_id"], org.stripe_account_id)
    await deliver(stack, [e for e in events if e["type"] == "charge.refunded"])
    after = await get_payment(stack, org.admin_headers, payment["id"])
    assert after["amount_refunded"] == 300 and len(after["refunds"]) == 1
    assert after["refunds"][0]["stripe_refund_id"].startswith("re_")
    # What is left accounts for it.
    over = await stack.http.post(refund_url(payment), headers={**org.admin_headers, **key()}, json={"amount": 701})
    assert over.status_code == 409
    ok = await stack.http.post(refund_url(payment), headers={**org.admin_headers, **key()}, json={"amount": 700})
    assert ok.status_code == 201
    # charge.refunded of our own refund changes nothing more.
    events = await stripe_events(stack, payment["stripe_payment_intent_id"], org.stripe_account_id)
    await deliver(stack, [e for e in events if e["type"] == "charge.refunded"])
    final = await get_payment(stack, org.admin_headers, payment["id"])
    assert final["amount_refunded"] == 1000 and len(final["refunds"]) == 2
    stats = (await stack.http.get(f"/v1/organizations/{org.id}/stats", headers=org.admin_headers)).json()["totals"]
    assert stats["refunded"] == 1000


async def test_refund_crash_after_stripe_is_completed_by_the_webhook_and_the_retry(
    stack: Stack, org: OrgContext
) -> None:

    payment = await paid(stack, org)
    headers = {**org.admin_headers, "Idempotency-Key": uuid.uuid4().hex}
    with crash_after_stripe(stack, "create_refund"):
        broken = await stack.http.post(refund_url(payment), headers=headers, json={"amount": 300})
    assert broken.status_code >= 500
    # Stripe refunded; its charge.refunded names our refund, which it completes (not a second one).
    events = await stripe_events(stack, payment["stripe_payment_intent_id"], org.stripe_account_id)
    await deliver(stack, [e for e in events if e["type"] == "charge.refunded"])
    after = await get_payment(stack, org.admin_headers, payment["id"])
    assert after["amount_refunded"] == 300 and len(after["refunds"]) == 1
    retry = await stack.http.post(refund_url(payment), headers=headers, json={"amount": 300})
    assert retry.status_code == 201, retry.text
    assert retry.json()["id"] == after["refunds"][0]["id"] and retry.json()["status"] == "succeeded"
    listed = (
        await stack.extras["stripe_sandbox"]
        .client()
        .v1.refunds.list_async(
            params={"payment_intent": payment["stripe_payment_intent_id"]},
            options={"stripe_account": org.stripe_account_id},
        )
    )
    assert len(listed.data) == 1
    final = await get_payment(stack, org.admin_headers, payment["id"])
    assert final["amount_refunded"] == 300


async def test_a_refund_that_stripe_fails_later_is_put_back(stack: Stack) -> None:
    """A card whose refunds fail asynchronously (Stripe's test card ending 5126)."""
    org = await onboarded_organization(stack, fee_percent_bps=1000)
    payment = await create_payment(stack, org.agent_headers, amount=1000, method="card")
    await confirm(stack, payment, org.stripe_account_id, pm="pm_card_refundFail")
    assert (await settle(stack, org, payment, org.stripe_account_id))["status"] == "succeeded"
    made = await stack.http.post(refund_url(payment), headers={**org.admin_headers, **key()}, json={"amount": 400})
    assert made.status_code == 201 and made.json()["status"] == "succeeded", made.text
    refund = made.json()
    assert refund["application_fee_refunded"] == 40

    sandbox = stack.extras["stripe_sandbox"]
    stripe_refund = None
    for _ in range(50):
        stripe_refund = await sandbox.client(stripe_account=org.stripe_account_id).v1.refunds.retrieve_async(
            refund["stripe_refund_id"]
        )
        if stripe_refund.status == "failed":
            break
        await asyncio.sleep(0.05)
    assert stripe_refund is not None and stripe_refund.status == "failed"
    events = await stripe_events(stack, payment["stripe_payment_intent_id"], org.stripe_account_id)
    assert "charge.refund.updated" in {e["type"] for e in events}
    await deliver(stack, events + events)  # as webhooks would, in order, some twice

    after = await get_payment(stack, org.admin_headers, payment["id"])
    assert after["amount_refunded"] == 0 and after["application_fee_refunded"] == 0
    assert [(r["status"], r["failure_reason"]) for r in after["refunds"]] == [("failed", "expired_or_canceled_card")]
    stats = (await stack.http.get(f"/v1/organizations/{org.id}/stats", headers=org.admin_headers)).json()["totals"]
    assert stats == {**stats, "gross": 1000, "refunded": 0, "fees": 100, "net": 900}
    charge = await sandbox.client(stripe_account=org.stripe_account_id).v1.charges.retrieve_async(stripe_refund.charge)
    assert charge.amount_refunded == 0  # the sandbox put it back too: the full amount can be refunded again
    again = await stack.http.post(refund_url(payment), headers={**org.admin_headers, **key()}, json={})
    assert again.status_code == 201 and again.json()["amount"] == 1000, again.text


async def test_charge_refunded_without_its_refund_list_reads_the_refunds_from_stripe(stack: Stack) -> None:
    """Newer API versions send `charge.refunded` without `refunds`: what Stripe has now is read,
    so a dashboard refund is recorded and one that has failed since is not."""
    org = await onboarded_organization(stack)
    sandbox = stack.extras["stripe_sandbox"].client(stripe_account=org.stripe_account_id)

    async def dashboard_refund(payment: dict[str, Any], amount: int) -> list[dict[str, Any]]:
        await sandbox.v1.refunds.create_async(
            params={"payment_intent": payment["stripe_payment_intent_id"], "amount": amount}
        )
        events = await stripe_events(stack, payment["stripe_payment_intent_id"], org.stripe_account_id)
        refunded = [e for e in events if e["type"] == "charge.refunded"]
        for event in refunded:
            del event["data"]["object"]["refunds"]
        return refunded

    kept = await paid(stack, org)
    assert await deliver(stack, await dashboard_refund(kept, 250)) == ["applied"]
    after = await get_payment(stack, org.admin_headers, kept["id"])
    assert after["amount_refunded"] == 250 and [r["amount"] for r in after["refunds"]] == [250]

    failing = await create_payment(stack, org.agent_headers, amount=1000, method="card")
    await confirm(stack, failing, org.stripe_account_id, pm="pm_card_refundFail")
    assert (await settle(stack, org, failing, org.stripe_account_id))["status"] == "succeeded"
    late = await dashboard_refund(failing, 300)
    for _ in range(50):  # the refund fails before its charge.refunded is delivered
        listed = await sandbox.v1.refunds.list_async(params={"payment_intent": failing["stripe_payment_intent_id"]})
        if listed.data[0].status == "failed":
            break
        await asyncio.sleep(0.05)
    assert await deliver(stack, late) == ["ignored"]
    assert (await get_payment(stack, org.admin_headers, failing["id"]))["amount_refunded"] == 0


async def test_a_refund_over_what_stripe_has_left_is_a_conflict(stack: Stack, org: OrgContext) -> None:
    """Refunded in the dashboard, its event not here yet: Stripe refuses more than what is left there,
    and the platform answers as it does when it knows (409), the key freed for a retry."""
    payment = await paid(stack, org)
    client = stack.extras["stripe_sandbox"].client()
    await client.v1.refunds.create_async(
        params={"payment_intent": payment["stripe_payment_intent_id"], "amount": 900},
        options={"stripe_account": org.stripe_account_id},
    )
    answer = await stack.http.post(refund_url(payment), headers={**org.admin_headers, **key()}, json={"amount": 500})
    assert answer.status_code == 409 and answer.json()["code"] == "refund_exceeds_remaining", answer.text
