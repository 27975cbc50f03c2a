"""Lists with filters and expansion, and the event log."""

from __future__ import annotations

import time

from stripe.params import PaymentIntentCreateParams

from sandbox.stripe.testing import ConnectedAccount
from tests.fixtures.stripe_types import as_object, given, id_of

PAY: PaymentIntentCreateParams = {"amount": 1_000, "currency": "eur", "confirm": True, "payment_method": "pm_card_visa"}


async def test_list_expansion_and_filters(connected: ConnectedAccount) -> None:
    client = connected.client
    first = await client.v1.payment_intents.create_async(params=PAY)
    second = await client.v1.payment_intents.create_async(params={**PAY, "amount": 2_000})
    page = await client.v1.payment_intents.list_async(params={"limit": 2, "expand": ["data.latest_charge"]})
    assert [p.id for p in page.data] == [second.id, first.id]
    latest = as_object(page.data[0].latest_charge)
    assert latest.object == "charge" and latest.amount == 2_000
    charges = await client.v1.charges.list_async(params={"payment_intent": first.id})
    assert [c.id for c in charges.data] == [first.latest_charge]
    refund = await client.v1.refunds.create_async(params={"charge": id_of(first.latest_charge)})
    expanded = await client.v1.refunds.retrieve_async(refund.id, params={"expand": ["charge", "balance_transaction"]})
    assert as_object(expanded.charge).refunded and as_object(expanded.balance_transaction).type == "refund"


async def test_events_filters(connected: ConnectedAccount) -> None:
    client = connected.client
    before = int(time.time()) - 1
    intent = await client.v1.payment_intents.create_async(params=PAY)
    succeeded = await client.v1.events.list_async(params={"type": "payment_intent.succeeded"})
    assert [e.data.object.id for e in succeeded.data] == [intent.id]
    event = await client.v1.events.retrieve_async(succeeded.data[0].id)
    assert event.type == "payment_intent.succeeded" and event.account == connected.id
    assert event.api_version and given(given(event.request).id).startswith("req_") and event.livemode is False
    recent = await client.v1.events.list_async(params={"created": {"gte": before}, "limit": 100})
    assert {"payment_intent.created", "charge.succeeded", "payment_intent.succeeded"} <= {e.type for e in recent.data}
    future = await client.v1.events.list_async(params={"created": {"gt": int(time.time()) + 60}})
    assert future.data == []
    several = await client.v1.events.list_async(params={"types": ["charge.succeeded", "payment_intent.created"]})
    assert {e.type for e in several.data} == {"charge.succeeded", "payment_intent.created"}
    platform_events = await connected.platform.v1.events.list_async(params={"limit": 100})
    assert all(e.to_dict().get("account") is None for e in platform_events.data)
