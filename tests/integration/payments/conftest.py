"""Helpers for the payments tests: confirm like the phone, deliver Stripe's events, read the sandbox."""

from __future__ import annotations

import contextlib
import datetime
import random
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import grpc
import orjson
import pytest
from collect.events.v1 import events_pb2, events_pb2_grpc

from runtime.errors import InvalidArgument
from tests.fixtures.organizations import OrgContext, onboarded_organization
from tests.fixtures.polling import eventually
from tests.fixtures.stack import Stack


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


async def create_payment(stack: Stack, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    answer = await stack.http.post("/v1/payments", headers={**headers, **key()}, json={"amount": 1000, **body})
    assert answer.status_code == 201, answer.text
    result: dict[str, Any] = answer.json()
    return result


def stripe_account_for(org: OrgContext, charge_model: str) -> str | None:
    return org.stripe_account_id if charge_model == "direct" else None


async def confirm(stack: Stack, payment: dict[str, Any], account: str | None, pm: str = "pm_card_present") -> Any:
    """Confirms the PaymentIntent as the phone's Terminal SDK would."""
    client = stack.extras["stripe_sandbox"].client()
    options: dict[str, Any] = {"stripe_account": account} if account else {}
    return await client.v1.payment_intents.confirm_async(
        payment["stripe_payment_intent_id"], params={"payment_method": pm}, options=options
    )


async def stripe_events(stack: Stack, intent_id: str, account: str | None) -> list[dict[str, Any]]:
    """The sandbox's events about one PaymentIntent (and its charges), oldest first."""
    client = stack.extras["stripe_sandbox"].client()
    options: dict[str, Any] = {"stripe_account": account} if account else {}
    listed = await client.v1.events.list_async(params={"limit": 100}, options=options)
    found = []
    for event in listed.data:
        data = event.to_dict()
        obj = data["data"]["object"]
        if intent_id in (obj.get("id"), obj.get("payment_intent")):
            found.append(data)
    return sorted(found, key=lambda e: (e["created"], e["id"]))


async def deliver(stack: Stack, events: list[dict[str, Any]], service: str = "payments") -> list[str]:
    """Hands events to a service's EventSinkService (Payments by default), as the webhook ingress does."""
    channel = grpc.aio.insecure_channel(stack.target(service))
    try:
        stub = events_pb2_grpc.EventSinkServiceStub(channel)
        token = stack.signer.service_token("tests")
        statuses = []
        for event in events:
            answer = await stub.DeliverEvent(
                events_pb2.DeliverEventRequest(
                    event=events_pb2.Event(
                        source="stripe",
                        event_id=event["id"],
                        type=event["type"],
                        account=event.get("account") or "",
                        payload=orjson.dumps(event),
                    )
                ),
                metadata=(("authorization", f"Bearer {token}"),),
            )
            statuses.append("duplicate" if answer.duplicate else answer.status)
        return statuses
    finally:
        await channel.close(None)


async def settle(
    stack: Stack, org: OrgContext, payment: dict[str, Any], account: str | None, want: str = "succeeded"
) -> dict[str, Any]:
    """The payment once Stripe's events about it reached Payments, in status `want`.

    The session stack has no webhook endpoint at the sandbox (tests/integration/payments/
    test_real_webhooks.py drives the real ingress): the sandbox's events are handed to Payments'
    EventSink as the ingress would. A status that never comes fails with the events delivered."""
    events = await stripe_events(stack, payment["stripe_payment_intent_id"], account)
    statuses = await deliver(stack, events)
    current = await get_payment(stack, org.admin_headers, payment["id"])
    if current["status"] != want:
        delivered = ", ".join(f"{event['type']} ({status})" for event, status in zip(events, statuses, strict=True))
        raise AssertionError(
            f"payment {payment['id']} is {current['status']}, never {want}: "
            f"the sandbox had {delivered or 'no event about it'}"
        )
    return current


async def get_payment(stack: Stack, headers: dict[str, str], payment_id: str) -> dict[str, Any]:
    answer = await stack.http.get(f"/v1/payments/{payment_id}", headers=headers)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


@contextlib.contextmanager
def stripe_call_replaced(stack: Stack, call: str, replacement: Callable[..., Awaitable[Any]]) -> Iterator[None]:
    """The next `call` (a `StripePayments` method) runs `replacement(the real method, *args)`
    instead, through Payments' Context (nothing test-only in its code); the calls after it reach
    the sandbox as usual."""
    ctx = stack.deps["payments"].extras["context"]
    real = ctx.stripe

    class Replaced:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

    async def once(*args: Any, **kwargs: Any) -> Any:
        ctx.stripe = real
        return await replacement(getattr(real, call), *args, **kwargs)

    wrapper = Replaced()
    setattr(wrapper, call, once)
    ctx.stripe = wrapper
    try:
        yield
    finally:
        ctx.stripe = real


def after_stripe(
    stack: Stack, call: str, meanwhile: Callable[[Any], Awaitable[None]]
) -> contextlib.AbstractContextManager[None]:
    """The next `call` reaches Stripe, then `meanwhile(answer)` runs before Payments goes on with the answer."""

    async def answered(method: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        answer = await method(*args, **kwargs)
        await meanwhile(answer)
        return answer

    return stripe_call_replaced(stack, call, answered)


def crash_after_stripe(stack: Stack, call: str) -> contextlib.AbstractContextManager[None]:
    """The next `call` reaches Stripe, then Payments "dies" before recording the answer."""

    async def crash(_answer: Any) -> None:
        raise RuntimeError(f"crashed after Stripe answered {call}")

    return after_stripe(stack, call, crash)


@pytest.fixture
async def org(stack: Stack) -> OrgContext:
    return await onboarded_organization(stack)


# --- disputes ---------------------------------------------------------------------------


def stripe_options(account: str | None) -> dict[str, Any]:
    """The SDK options of a call on `account` (None: the platform)."""
    return {"stripe_account": account} if account else {}


async def disputed_payment(stack: Stack, org: OrgContext, charge_model: str, amount: int) -> dict[str, Any]:
    """A card payment paid with the dispute test card, succeeded, and disputed at Stripe."""
    payment = await create_payment(stack, org.agent_headers, amount=amount, method="card")
    account = stripe_account_for(org, charge_model)
    await confirm(stack, payment, account, pm="pm_card_createDispute")
    done = await settle(stack, org, payment, account)
    await stripe_dispute(stack, done, account, "needs_response")
    return done


async def stripe_dispute(stack: Stack, payment: dict[str, Any], account: str | None, status: str) -> Any:
    client = stack.extras["stripe_sandbox"].client()

    async def found() -> Any:
        listed = await client.v1.disputes.list_async(
            params={"payment_intent": payment["stripe_payment_intent_id"]}, options=stripe_options(account)
        )
        return listed.data[0] if listed.data and listed.data[0].status == status else None

    return await eventually(found, f"a {status} dispute on payment {payment['id']}")


async def deliver_shuffled(stack: Stack, payment: dict[str, Any], account: str | None, seed: int) -> list[str]:
    """Every event about the payment (the dispute's too), shuffled, half of them twice."""
    events = await stripe_events(stack, payment["stripe_payment_intent_id"], account)
    chosen = random.Random(seed)
    shuffled = events + chosen.sample(events, len(events) // 2)
    chosen.shuffle(shuffled)
    return await deliver(stack, shuffled)


async def listed_dispute(stack: Stack, headers: dict[str, str], payment_id: str) -> dict[str, Any]:
    """The one dispute of the payment, as GET /v1/disputes lists it."""
    answer = await stack.http.get("/v1/disputes?limit=100", headers=headers)
    assert answer.status_code == 200, answer.text
    mine = [d for d in answer.json()["data"] if d["payment_id"] == payment_id]
    assert len(mine) == 1, answer.json()
    found: dict[str, Any] = mine[0]
    return found


async def submit_evidence(stack: Stack, org: OrgContext, dispute: dict[str, Any], text: str) -> dict[str, Any]:
    """Submits evidence whose text is Stripe's test value (`winning_evidence`, `losing_evidence`)."""
    answer = await stack.http.post(
        f"/v1/disputes/{dispute['id']}/evidence",
        headers=org.admin_headers,
        json={"evidence": {"uncategorized_text": text, "product_description": "A calendar"}},
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


# --- the books' days ------------------------------------------------------------------------


def refused_by_stripe(stack: Stack, call: str) -> contextlib.AbstractContextManager[None]:
    """The next `call` (a `StripePayments` method) is refused by Stripe as a 400 is (the platform's
    balance short, say), through Payments' Context; the calls after it reach the sandbox."""

    async def refuse(_method: Callable[..., Awaitable[Any]], *_args: Any, **_kwargs: Any) -> Any:
        raise InvalidArgument(f"Stripe refused {call}: insufficient funds", "stripe_balance_insufficient")

    return stripe_call_replaced(stack, call, refuse)


@contextlib.contextmanager
def days_later(stack: Stack, days: int) -> Iterator[None]:
    """Payments' books read a clock `days` ahead meanwhile: what it books lands on that later day."""
    ctx = stack.deps["payments"].extras["context"]
    real = ctx.clock
    ctx.clock = lambda: real() + datetime.timedelta(days=days)
    try:
        yield
    finally:
        ctx.clock = real
