"""Idempotency end to end: replays, other bodies, concurrent duplicates, and a crash after the Stripe call."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.fixtures.organizations import OrgContext
from tests.fixtures.polling import eventually
from tests.fixtures.stack import Stack
from tests.integration.payments.conftest import (
    after_stripe,
    confirm,
    crash_after_stripe,
    deliver,
    get_payment,
    refused_by_stripe,
    stripe_events,
)


async def intents_on(stack: Stack, account: str | None) -> list[Any]:
    client = stack.extras["stripe_sandbox"].client()
    listed = await client.v1.payment_intents.list_async(params={"limit": 100}, options={"stripe_account": account})
    return list(listed.data)


async def test_replay_returns_the_first_response(stack: Stack, org: OrgContext) -> None:
    headers = {**org.agent_headers, "Idempotency-Key": uuid.uuid4().hex}
    body = {"amount": 1500, "description": "calendar"}
    first = await stack.http.post("/v1/payments", headers=headers, json=body)
    again = await stack.http.post("/v1/payments", headers=headers, json=body)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json() == first.json()
    assert len(await intents_on(stack, org.stripe_account_id)) == 1


async def test_same_key_with_another_body_is_409(stack: Stack, org: OrgContext) -> None:
    headers = {**org.agent_headers, "Idempotency-Key": uuid.uuid4().hex}
    assert (await stack.http.post("/v1/payments", headers=headers, json={"amount": 1500})).status_code == 201
    other = await stack.http.post("/v1/payments", headers=headers, json={"amount": 1600})
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"


async def test_key_is_required_and_bounded(stack: Stack, org: OrgContext) -> None:
    missing = await stack.http.post("/v1/payments", headers=org.agent_headers, json={"amount": 1500})
    assert missing.status_code == 400 and missing.json()["code"] == "idempotency_key_required"
    long = await stack.http.post(
        "/v1/payments", headers={**org.agent_headers, "Idempotency-Key": "k" * 256}, json={"amount": 1500}
    )
    assert long.status_code == 400


async def test_keys_are_scoped_per_organisation(stack: Stack, org: OrgContext) -> None:
    from tests.fixtures.organizations import onboarded_organization

    other = await onboarded_organization(stack)
    shared = uuid.uuid4().hex
    mine = await stack.http.post(
        "/v1/payments", headers={**org.agent_headers, "Idempotency-Key": shared}, json={"amount": 1500}
    )
    theirs = await stack.http.post(
        "/v1/payments", headers={**other.agent_headers, "Idempotency-Key": shared}, json={"amount": 1500}
    )
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]


async def test_fifty_concurrent_creates_with_one_key_make_one_payment(stack: Stack, org: OrgContext) -> None:
    headers = {**org.agent_headers, "Idempotency-Key": uuid.uuid4().hex}
    answers = await asyncio.gather(
        *(stack.http.post("/v1/payments", headers=headers, json={"amount": 2000}) for _ in range(50))
    )
    assert {a.status_code for a in answers} == {201}, {a.text for a in answers if a.status_code != 201}
    assert len({a.json()["id"] for a in answers}) == 1
    assert len({a.json()["stripe_payment_intent_id"] for a in answers}) == 1
    assert len(await intents_on(stack, org.stripe_account_id)) == 1
    rows = await stack.deps["payments"].pool.fetchval(
        "SELECT count(*) FROM payments WHERE organization_id = $1", org.id
    )
    assert rows == 1


async def test_crash_between_stripe_call_and_local_write_is_completed_by_a_retry(stack: Stack, org: OrgContext) -> None:
    headers = {**org.agent_headers, "Idempotency-Key": uuid.uuid4().hex}
    with crash_after_stripe(stack, "create_intent"):
        broken = await stack.http.post("/v1/payments", headers=headers, json={"amount": 2500})
    assert broken.status_code >= 500
    made = await intents_on(stack, org.stripe_account_id)
    assert len(made) == 1  # Stripe has the intent; the platform did not record it
    pending = await stack.deps["payments"].pool.fetchrow(
        "SELECT status, stripe_payment_intent_id FROM payments WHERE organization_id = $1", org.id
    )
    assert pending is not None and pending["status"] == "pending" and pending["stripe_payment_intent_id"] is None

    retry = await stack.http.post("/v1/payments", headers=headers, json={"amount": 2500})
    assert retry.status_code == 201, retry.text
    assert retry.json()["stripe_payment_intent_id"] == made[0].id
    assert retry.json()["status"] == "requires_payment_method"
    assert len(await intents_on(stack, org.stripe_account_id)) == 1
    assert made[0].metadata["platform_payment_id"] == retry.json()["id"]


async def test_a_payment_confirmed_while_unrecorded_never_goes_back_on_the_retry(stack: Stack, org: OrgContext) -> None:
    """Crash between Stripe and the database, the phone confirms server-side, Stripe's events
    arrive, then the client retries: the payment stays succeeded, with its intent, counted once."""
    headers = {**org.agent_headers, "Idempotency-Key": uuid.uuid4().hex}
    with crash_after_stripe(stack, "create_intent"):
        broken = await stack.http.post("/v1/payments", headers=headers, json={"amount": 2500})
    assert broken.status_code >= 500
    (made,) = await intents_on(stack, org.stripe_account_id)
    payment_id = made.metadata["platform_payment_id"]
    await confirm(stack, {"stripe_payment_intent_id": made.id}, org.stripe_account_id)
    await deliver(stack, await stripe_events(stack, made.id, org.stripe_account_id))
    paid = await get_payment(stack, org.admin_headers, payment_id)
    assert paid["status"] == "succeeded" and paid["stripe_payment_intent_id"] == made.id

    retry = await stack.http.post("/v1/payments", headers=headers, json={"amount": 2500})
    assert retry.status_code == 201, retry.text
    assert retry.json()["id"] == payment_id and retry.json()["status"] == "succeeded"
    final = await get_payment(stack, org.admin_headers, payment_id)
    assert final["status"] == "succeeded" and final["amount_captured"] == 2500
    assert final["stripe_payment_intent_id"] == made.id
    stats = (await stack.http.get(f"/v1/organizations/{org.id}/stats", headers=org.admin_headers)).json()["totals"]
    assert stats["count"] == 1 and stats["gross"] == 2500


async def _created_records(stack: Stack, payment_id: str) -> int:
    """`payment.created` audit records of the payment, once Payments' outbox has forwarded them all."""

    async def forwarded() -> int | None:
        waiting = await stack.deps["payments"].pool.fetchval(
            "SELECT count(*) FROM audit_outbox WHERE targets->>'payment_id' = $1", payment_id
        )
        chained = await stack.deps["accounts"].pool.fetchval(
            "SELECT count(*) FROM audit_entries WHERE action = 'payment.created' AND targets->>'payment_id' = $1",
            payment_id,
        )
        return None if waiting else int(chained)

    return await eventually(forwarded, "the payment's audit records forwarded")


async def test_a_payment_an_event_moved_while_at_stripe_keeps_its_status_and_is_counted_once(
    stack: Stack, org: OrgContext
) -> None:
    """The phone confirms and Stripe's events are applied between Stripe's answer to the create and
    its recording: the create's answer follows the payment (succeeded), never takes it back."""
    headers = {**org.agent_headers, "Idempotency-Key": uuid.uuid4().hex}

    async def paid_meanwhile(intent: Any) -> None:
        await confirm(stack, {"stripe_payment_intent_id": intent["id"]}, org.stripe_account_id)
        await deliver(stack, await stripe_events(stack, intent["id"], org.stripe_account_id))

    with after_stripe(stack, "create_intent", paid_meanwhile):
        created = await stack.http.post("/v1/payments", headers=headers, json={"amount": 2700})
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "succeeded" and created.json()["amount_captured"] == 2700
    again = await stack.http.post("/v1/payments", headers=headers, json={"amount": 2700})
    assert again.json() == created.json() and again.headers.get("idempotent-replayed") == "true"
    stats = (await stack.http.get(f"/v1/organizations/{org.id}/stats", headers=org.admin_headers)).json()["totals"]
    assert stats["count"] == 1 and stats["gross"] == 2700
    assert await _created_records(stack, created.json()["id"]) == 1


async def test_a_duplicate_answered_while_the_first_was_at_stripe_gives_both_one_answer(
    stack: Stack, org: OrgContext
) -> None:
    """A retry with the same key completes the payment while the first request waits for Stripe's
    answer: the first then answers what the retry recorded, with one intent and one audit record."""
    headers = {**org.agent_headers, "Idempotency-Key": uuid.uuid4().hex}
    retried: list[Any] = []

    async def retry_meanwhile(_intent: Any) -> None:
        retried.append(await stack.http.post("/v1/payments", headers=headers, json={"amount": 2800}))

    with after_stripe(stack, "create_intent", retry_meanwhile):
        first = await stack.http.post("/v1/payments", headers=headers, json={"amount": 2800})
    assert first.status_code == retried[0].status_code == 201, (first.text, retried[0].text)
    assert first.json() == retried[0].json()
    assert first.json()["status"] == "requires_payment_method"
    assert len(await intents_on(stack, org.stripe_account_id)) == 1
    assert await _created_records(stack, first.json()["id"]) == 1


async def test_a_create_stripe_refuses_frees_its_key(stack: Stack, org: OrgContext) -> None:
    """Stripe refusing the PaymentIntent (a 4xx: nothing created) answers that refusal, leaves no
    payment behind and frees the key: the same key then makes the payment."""
    headers = {**org.agent_headers, "Idempotency-Key": uuid.uuid4().hex}
    with refused_by_stripe(stack, "create_intent"):
        refused = await stack.http.post("/v1/payments", headers=headers, json={"amount": 2900})
    assert refused.status_code == 400 and refused.json()["code"] == "stripe_balance_insufficient"
    count = "SELECT count(*) FROM payments WHERE organization_id = $1"
    assert await stack.deps["payments"].pool.fetchval(count, org.id) == 0
    made = await stack.http.post("/v1/payments", headers=headers, json={"amount": 2900})
    assert made.status_code == 201 and made.headers.get("idempotent-replayed") is None, made.text
    assert await stack.deps["payments"].pool.fetchval(count, org.id) == 1
    assert len(await intents_on(stack, org.stripe_account_id)) == 1


async def test_stripe_unavailable_then_retry_completes(stack: Stack, org: OrgContext) -> None:
    import httpx

    sandbox = stack.extras["stripe_sandbox"]
    headers = {**org.agent_headers, "Idempotency-Key": uuid.uuid4().hex}
    async with httpx.AsyncClient() as http:
        await http.post(f"{sandbox.url}/_sandbox/fail", json={"fail_next": 3, "status": 503})
    down = await stack.http.post("/v1/payments", headers=headers, json={"amount": 2500})
    assert down.status_code == 503, down.text
    assert down.json()["code"] == "stripe_unavailable"
    retry = await stack.http.post("/v1/payments", headers=headers, json={"amount": 2500})
    assert retry.status_code == 201, retry.text
    assert len(await intents_on(stack, org.stripe_account_id)) == 1


async def test_answered_keys_expire_after_a_day(stack: Stack, org: OrgContext) -> None:
    from services.payments import repository

    headers = {**org.agent_headers, "Idempotency-Key": uuid.uuid4().hex}
    first = await stack.http.post("/v1/payments", headers=headers, json={"amount": 1500})
    pool = stack.deps["payments"].pool
    await pool.execute(
        "UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE organization_id = $1", org.id
    )
    async with pool.acquire() as conn:
        assert await repository.expire_keys(conn, 24) >= 1
    again = await stack.http.post("/v1/payments", headers=headers, json={"amount": 1600})
    assert again.status_code == 201 and again.json()["id"] != first.json()["id"]
